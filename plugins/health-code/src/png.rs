//! The offline code as a PNG (E2): the QR with its generation and expiry
//! times drawn below it in a built-in 5×7 bitmap font. Written by hand —
//! 1-bit greyscale, zlib "stored" blocks — so the plugin needs no image
//! crates: a QR image barely compresses anyway.

/// 5×7 glyphs, one byte per row, the low five bits left to right.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'N' => [0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        _ => [0; 7],
    }
}

/// A black-on-white picture being drawn.
struct Canvas {
    w: usize,
    h: usize,
    dark: Vec<bool>,
}

impl Canvas {
    fn fill(&mut self, x: usize, y: usize, size: usize) {
        for dy in 0..size {
            for dx in 0..size {
                if x + dx < self.w && y + dy < self.h {
                    self.dark[(y + dy) * self.w + x + dx] = true;
                }
            }
        }
    }
    fn text(&mut self, x: usize, y: usize, scale: usize, s: &str) {
        for (i, c) in s.chars().enumerate() {
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.fill(x + (i * 6 + col) * scale, y + row * scale, scale);
                    }
                }
            }
        }
    }
}

const MODULE: usize = 4;
const QUIET: usize = 4;
const SCALE: usize = 2;

/// The QR (`width` modules a side, row-major) with `lines` of text below.
pub fn render(width: usize, modules: &[bool], lines: &[String]) -> Vec<u8> {
    let qr_px = (width + 2 * QUIET) * MODULE;
    let text_w = lines.iter().map(|l| l.chars().count() * 6 * SCALE).max().unwrap_or(0) + 2 * QUIET * MODULE;
    let w = qr_px.max(text_w);
    let line_h = 10 * SCALE;
    let h = qr_px + lines.len() * line_h + QUIET * MODULE;
    let mut c = Canvas { w, h, dark: vec![false; w * h] };
    let left = (w - qr_px) / 2;
    for (i, &d) in modules.iter().enumerate() {
        if d {
            c.fill(left + (QUIET + i % width) * MODULE, (QUIET + i / width) * MODULE, MODULE);
        }
    }
    for (n, line) in lines.iter().enumerate() {
        let lw = line.chars().count() * 6 * SCALE;
        c.text((w.saturating_sub(lw)) / 2, qr_px + n * line_h, SCALE, line);
    }
    encode(&c)
}

fn crc32(chunks: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for data in chunks {
        for &b in *data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
}

/// zlib stream of stored (uncompressed) deflate blocks (RFC 1950/1951).
fn zlib_stored(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if raw.is_empty() { vec![&[][..]] } else { raw.chunks(65_535).collect() };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// 1-bit greyscale PNG (0 = black): each row a filter byte and packed bits.
fn encode(c: &Canvas) -> Vec<u8> {
    let row_bytes = c.w.div_ceil(8);
    let mut raw = Vec::with_capacity((row_bytes + 1) * c.h);
    for y in 0..c.h {
        raw.push(0);
        let mut row = vec![0xFFu8; row_bytes];
        for x in 0..c.w {
            if c.dark[y * c.w + x] {
                row[x / 8] &= !(0x80 >> (x % 8));
            }
        }
        raw.extend_from_slice(&row);
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(c.w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(c.h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_and_shape() {
        assert_eq!(super::crc32(&[b"IEND"]), 0xAE42_6082);
        let png = super::render(21, &[true; 441], &["GEN 2026-12-01 10:00:00".into()]);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.ends_with(&[0xAE, 0x42, 0x60, 0x82]));
    }
}
