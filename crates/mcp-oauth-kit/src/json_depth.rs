//! A bound on the nesting of JSON the kit parses itself (registration metadata, client
//! metadata documents), checked before serde sees the bytes.
//!
//! serde_json skips an unknown field's value without its recursion limit, so a body of a few
//! KiB can hold thousands of nested arrays that are walked and then ignored. No client
//! metadata needs more than a few levels; refusing anything deeper than [`MAX_JSON_DEPTH`]
//! costs one linear pass over bytes that are already bounded in size.

/// The deepest nesting of arrays and objects accepted (the outermost object is level 1).
pub(crate) const MAX_JSON_DEPTH: usize = 16;

/// Whether `json` nests arrays and objects at most `max` levels deep. Brackets inside strings
/// (escaped quotes included) do not count. Only the nesting is judged: malformed JSON within
/// the bound passes, for serde to refuse with its own message.
pub(crate) fn within_depth(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!(r#"{{"x":{}1{}}}"#, "[".repeat(levels - 1), "]".repeat(levels - 1))
    }

    #[test]
    fn counts_arrays_and_objects() {
        assert!(within_depth(b"1", 0));
        assert!(within_depth(b"{}", 1));
        assert!(!within_depth(b"{}", 0));
        assert!(within_depth(br#"{"a":[{"b":[]}]}"#, 4));
        assert!(!within_depth(br#"{"a":[{"b":[]}]}"#, 3));
        assert!(within_depth(nested(MAX_JSON_DEPTH).as_bytes(), MAX_JSON_DEPTH));
        assert!(!within_depth(nested(MAX_JSON_DEPTH + 1).as_bytes(), MAX_JSON_DEPTH));
        assert!(!within_depth(nested(10_000).as_bytes(), MAX_JSON_DEPTH));
    }

    #[test]
    fn siblings_do_not_add_up() {
        let wide = format!("[{}]", vec!["[[]]"; 1000].join(","));
        assert!(within_depth(wide.as_bytes(), 3));
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let deep_text = format!(r#"{{"client_name":"{}"}}"#, "[{".repeat(1000));
        assert!(within_depth(deep_text.as_bytes(), 1));
        // An escaped quote does not end the string; an escaped backslash before a quote does.
        assert!(within_depth(br#"{"a":"\"[[[[","b":1}"#, 1));
        assert!(!within_depth(br#"{"a":"\\",  "b":[[[]]]}"#, 3));
        assert!(within_depth(br#"{"a":"\\",  "b":[[[]]]}"#, 4));
        assert!(within_depth(br#"{"a":"\\\"[[[["}"#, 1));
        // Unicode escapes and multi-byte text are plain string content.
        assert!(within_depth("{\"a\":\"\\u005b[é]\"}".as_bytes(), 1));
    }

    #[test]
    fn unbalanced_input_is_left_to_the_parser() {
        assert!(within_depth(b"]]]]{", 1));
        assert!(within_depth(br#"{"a":"unterminated [[[["#, 1));
        assert!(!within_depth(&b"[".repeat(17), MAX_JSON_DEPTH));
    }
}
