//! Text helpers shared by every layer: the one place text is cut to a cap.

/// The byte index at which `s` must be cut to fit `max` bytes at a character boundary, or
/// `None` when it already fits.
fn cut_point(s: &str, max: usize) -> Option<usize> {
    if s.len() <= max {
        return None;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    Some(cut)
}

/// `s` cut to at most `max` bytes at a character boundary, marked with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match cut_point(s, max) {
        None => s.to_owned(),
        Some(cut) => format!("{}…", &s[..cut]),
    }
}

/// [`truncate`] for an owned string: no allocation when it already fits.
pub fn truncate_owned(mut s: String, max: usize) -> String {
    if let Some(cut) = cut_point(&s, max) {
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{truncate, truncate_owned};

    #[test]
    fn cuts_at_a_char_boundary_and_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdef", 3), "abc…");
        // 'é' is two bytes: a cut inside it moves back to the boundary.
        assert_eq!(truncate("aé", 2), "a…");
        assert_eq!(truncate_owned("aé".to_owned(), 2), "a…");
        assert_eq!(truncate_owned("ab".to_owned(), 2), "ab");
    }
}
