//! The offline code as a PNG (E2): the QR with its generation and expiry
//! times drawn below it in a built-in 5×7 bitmap font (only digits and a
//! few letters are needed, so no font rasteriser), encoded as a 1-bit
//! greyscale PNG by the `png` crate.

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
pub fn render(width: usize, modules: &[bool], lines: &[String]) -> Result<Vec<u8>, String> {
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

/// 1-bit greyscale PNG (0 = black), rows of packed bits, encoded by the
/// `png` crate.
fn encode(c: &Canvas) -> Result<Vec<u8>, String> {
    let row_bytes = c.w.div_ceil(8);
    let mut raw = Vec::with_capacity(row_bytes * c.h);
    for y in 0..c.h {
        let mut row = vec![0xFFu8; row_bytes];
        for x in 0..c.w {
            if c.dark[y * c.w + x] {
                row[x / 8] &= !(0x80 >> (x % 8));
            }
        }
        raw.extend_from_slice(&row);
    }
    let mut out = Vec::new();
    let size = |n: usize| u32::try_from(n).map_err(|_| "image too large".to_string());
    let mut enc = png::Encoder::new(&mut out, size(c.w)?, size(c.h)?);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::One);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&raw).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_with_the_drawn_size() {
        let png = super::render(21, &[true; 441], &["GEN 2026-12-01 10:00:00".into()]).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
        let info = reader.info().clone();
        assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Grayscale, png::BitDepth::One));
        // The text line (23 glyphs, 12 px each, plus margins) is wider than
        // the QR (21 modules + a quiet zone of 4 on each side, 4 px a module).
        let qr = (21 + 8) * 4;
        assert_eq!(info.width, 23 * 12 + 32);
        assert_eq!(info.height as usize, qr + 20 + 16);
        let mut buf = vec![0; reader.output_buffer_size()];
        reader.next_frame(&mut buf).unwrap();
        let row_bytes = (info.width as usize).div_ceil(8);
        let dark = |x: usize, y: usize| buf[y * row_bytes + x / 8] & (0x80 >> (x % 8)) == 0;
        // The QR is centred: its quiet zone is white, its first module dark.
        let left = (info.width as usize - qr) / 2;
        assert!(!dark(left + 15, 15));
        assert!(dark(left + 16, 16));
    }
}
