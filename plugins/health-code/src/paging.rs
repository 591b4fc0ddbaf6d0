//! Admin lists over unbounded data (logs, code records) read one screen at
//! a time through the host's `kv_page`: newest first, from a
//! cursor, keeping the rows a filter accepts, until the screen is full, a
//! key falls below a floor (a date range), or a bounded number of rows was
//! examined — never the whole log at once.
use idp_plugin_sdk::Host;
pub use idp_plugin_sdk::Order;

/// One screen and where the next (older) one starts.
#[derive(Debug)]
pub struct Screen<T> {
    pub items: Vec<T>,
    /// The cursor of the next screen; None when nothing older is left.
    pub next: Option<String>,
    pub examined: usize,
    /// Stopped at `budget` rows examined before the screen was full.
    pub limited: bool,
}

/// Reads `prefix` in descending key order strictly before `cursor`,
/// stopping below `floor`. Each row goes through `keep`, which returns the
/// item to show or None to skip it.
pub fn screen<T>(
    host: &Host,
    prefix: &str,
    cursor: Option<String>,
    floor: Option<&str>,
    size: usize,
    budget: usize,
    mut keep: impl FnMut(&str, &str) -> Option<T>,
) -> Result<Screen<T>, String> {
    let mut out = Screen { items: Vec::new(), next: None, examined: 0, limited: false };
    // The first read is one screen and one row (enough when nothing is
    // filtered out); later reads only happen when rows were skipped, so
    // they take the largest page.
    let mut batch = (size + 1).min(500) as u32;
    let mut cursor = cursor;
    loop {
        let page = host.kv_page(prefix, cursor.as_deref(), Order::Desc, batch)?;
        for (key, value) in page.rows {
            if floor.is_some_and(|f| key.as_str() < f) {
                return Ok(out);
            }
            if out.items.len() >= size || out.examined >= budget {
                // A row is left: the next screen starts after the last one read.
                out.limited = out.items.len() < size;
                out.next = cursor;
                return Ok(out);
            }
            out.examined += 1;
            if let Some(item) = keep(&key, &value) {
                out.items.push(item);
            }
            cursor = Some(key);
        }
        if page.next.is_none() {
            return Ok(out);
        }
        batch = 500;
    }
}
