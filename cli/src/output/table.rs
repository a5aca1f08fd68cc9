//! A tiny column renderer: left-aligned columns separated by three spaces, like
//! `kubectl get`. Widths count characters, which is exact for the ASCII names, statuses
//! and numbers these tables hold.

/// Gap between columns.
const GAP: &str = "   ";

/// Rows under a header line. Every row has one cell per header.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Table { headers: headers.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    /// Adds a row; missing cells render empty and extra cells are dropped, so a mistake in
    /// a view shows as a blank cell rather than a panic.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut cells: Vec<String> = cells.into_iter().map(|c| one_line(&c.into())).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The header and rows, each line ending in `\n`, without trailing spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (i, (cell, w)) in line.iter().zip(&widths).enumerate() {
                if i > 0 {
                    text.push_str(GAP);
                }
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', w - width(cell)));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `Label:  value` lines with the values aligned, for `get` views. An empty value shows
/// as `-` so a blank is visibly "not set" rather than a rendering gap.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let label_width = pairs.iter().map(|(label, _)| width(label) + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (label, value) in pairs {
        let value = if value.is_empty() { "-".to_string() } else { one_line(value) };
        let label = format!("{label}:");
        out.push_str(&format!("{label:<label_width$}  {value}\n"));
    }
    out
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// A cell must stay on its line: newlines and tabs in reasons or descriptions would
/// break the columns.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let mut t = Table::new(["NAME", "STATUS", "REASON"]);
        t.row(["mnist", "RUNNING", ""]);
        t.row(["resnet-50-long", "CREATE REQUESTED", "no node with 2 free GPUs"]);
        assert_eq!(
            t.render(),
            "NAME             STATUS             REASON\n\
             mnist            RUNNING\n\
             resnet-50-long   CREATE REQUESTED   no node with 2 free GPUs\n"
        );
    }

    #[test]
    fn empty_table_is_just_the_header() {
        let t = Table::new(["ID", "ADDRESS"]);
        assert!(t.is_empty());
        assert_eq!(t.render(), "ID   ADDRESS\n");
    }

    #[test]
    fn rows_are_padded_or_cut_to_the_header_and_kept_on_one_line() {
        let mut t = Table::new(["A", "B"]);
        t.row(["x"]);
        t.row(["multi\nline", "y", "dropped"]);
        assert_eq!(t.render(), "A            B\nx\nmulti line   y\n");
    }

    #[test]
    fn fields_align_values_and_mark_empty_ones() {
        assert_eq!(
            fields(&[("Name", "mnist".into()), ("Description", String::new())]),
            "Name:         mnist\nDescription:  -\n"
        );
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("exactly-10", 10), "exactly-10");
        assert_eq!(truncate("a bit too long", 10), "a bit too…");
    }
}
