//! Strings from outside (tags, errors quoting them, what an instance reports about itself) on a
//! terminal: every character a terminal would act on instead of print is shown as a visible
//! escape. A status table must not let an instance hide rows (`ESC [8m`), write the operator's
//! clipboard (OSC 52), or start a new, fake row with a newline. JSON output never goes through
//! here: it is exact, and serde_json escapes control characters itself.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with every terminal control shown as text: `\e` (ESC), `\n`, `\r`, `\t`, and `\u{..}` for
/// the other C0 controls, DEL, the C1 controls U+0080–U+009F (8-bit CSI/OSC on some terminals),
/// bidi overrides and isolates (which reorder what follows them on the line) and the Unicode
/// line and paragraph separators. Backslashes are kept: the point is that nothing acts on the
/// terminal, not that the text can be parsed back.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\x1b' => out.push_str("\\e"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() // C0, DEL and C1 (U+0080–U+009F)
        || matches!(c,
            '\u{061c}'              // ARABIC LETTER MARK
            | '\u{200e}' | '\u{200f}' // LRM, RLM
            | '\u{202a}'..='\u{202e}' // LRE, RLE, PDF, LRO, RLO
            | '\u{2066}'..='\u{2069}' // LRI, RLI, FSI, PDI
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(for_terminal("prod-web ü 日本"), Cow::Borrowed(_)));
    }

    #[test]
    fn terminal_controls_become_visible() {
        assert_eq!(for_terminal("\x1b[8mhidden"), "\\e[8mhidden");
        assert_eq!(
            for_terminal("\x1b]52;c;cm0gLXJmIH4=\x07"),
            "\\e]52;c;cm0gLXJmIH4=\\u{7}"
        );
        assert_eq!(for_terminal("x\ni-99  healthy"), "x\\ni-99  healthy");
        assert_eq!(for_terminal("a\r\tb\0\x7f"), "a\\r\\tb\\u{0}\\u{7f}");
        assert_eq!(for_terminal("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(for_terminal("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(for_terminal("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
    }

    #[test]
    fn no_escaped_string_has_a_control_left() {
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            let s = c.to_string();
            let e = for_terminal(&s);
            assert!(!e.chars().any(needs_escape), "{c:?} -> {e:?}");
        }
    }
}
