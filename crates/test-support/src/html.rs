//! The forms of an HTML page as a browser submits them, read with a small tag scanner.

/// An HTML `<form>`, reduced to what a browser would submit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlForm {
    /// The `method` attribute, lowercased (`get` when absent).
    pub method: String,
    /// The `action` attribute (entities decoded), if present.
    pub action: Option<String>,
    /// `name`/`value` of every successful control: text, password, hidden, …
    /// inputs and checked checkboxes/radios, in document order.
    pub fields: Vec<(String, String)>,
    /// `name`/`value` of the named submit buttons (`<button>` and
    /// `<input type="submit">`); only the one clicked is submitted.
    pub submit_buttons: Vec<(String, String)>,
}

impl HtmlForm {
    /// Whether the form has a (non-button) field called `name`.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _)| n == name)
    }

    /// Sets field `name` to `value`, adding it if the form lacks it.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.fields.push((name.to_owned(), value.to_owned())),
        }
    }

    /// The fields to post when clicking `button` (a `(name, value)` pair among
    /// [`submit_buttons`](Self::submit_buttons)); falls back to the first named
    /// submit button when `button` is `None` or not on the form.
    pub fn submission(&self, button: Option<(&str, &str)>) -> Vec<(String, String)> {
        let clicked = button
            .and_then(|(name, value)| self.submit_buttons.iter().find(|(n, v)| n == name && v == value))
            .or_else(|| self.submit_buttons.first());
        let mut fields = self.fields.clone();
        fields.extend(clicked.cloned());
        fields
    }
}

/// Finds the `<form>`s of an HTML page with a small tag scanner (no HTML
/// parser): comments, `<script>` and `<style>` bodies are skipped, attribute
/// names are case-insensitive, values may be double-, single- or unquoted, and
/// character references (`&amp;`, `&quot;`, `&#39;`, `&#x2F;`, …) are decoded.
pub fn find_forms(html: &str) -> Vec<HtmlForm> {
    let mut forms = Vec::new();
    let mut current: Option<HtmlForm> = None;
    for tag in Tags::new(html) {
        match (tag.name.as_str(), tag.closing) {
            ("form", false) => {
                forms.extend(current.take());
                current = Some(HtmlForm {
                    method: tag.attr("method").unwrap_or("get").to_ascii_lowercase(),
                    action: tag.attr("action").map(str::to_owned),
                    ..HtmlForm::default()
                });
            }
            ("form", true) => forms.extend(current.take()),
            ("input", false) => {
                let (Some(form), Some(name)) = (current.as_mut(), tag.attr("name")) else {
                    continue;
                };
                let value = tag.attr("value");
                match tag.attr("type").unwrap_or("text").to_ascii_lowercase().as_str() {
                    "submit" => form.submit_buttons.push((name.to_owned(), value.unwrap_or_default().to_owned())),
                    "checkbox" | "radio" if tag.attr("checked").is_some() => {
                        form.fields.push((name.to_owned(), value.unwrap_or("on").to_owned()))
                    }
                    "checkbox" | "radio" | "button" | "image" | "reset" | "file" => {}
                    _ => form.fields.push((name.to_owned(), value.unwrap_or_default().to_owned())),
                }
            }
            ("button", false) => {
                let (Some(form), Some(name)) = (current.as_mut(), tag.attr("name")) else {
                    continue;
                };
                if tag.attr("type").unwrap_or("submit").eq_ignore_ascii_case("submit") {
                    let value = tag.attr("value").unwrap_or_default();
                    form.submit_buttons.push((name.to_owned(), value.to_owned()));
                }
            }
            _ => {}
        }
    }
    forms.extend(current);
    forms
}

/// One start or end tag.
struct Tag {
    /// Lowercased tag name.
    name: String,
    closing: bool,
    /// Lowercased attribute names with decoded values (`""` for bare attributes).
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Iterator over the tags of an HTML document.
///
/// Every delimiter it looks for is ASCII, so slicing at those byte offsets is
/// always on a UTF-8 character boundary.
struct Tags<'a> {
    html: &'a str,
    pos: usize,
}

impl<'a> Tags<'a> {
    fn new(html: &'a str) -> Self {
        Self { html, pos: 0 }
    }

    /// Moves past the next occurrence of `needle` (case-insensitively), or to the end.
    fn skip_past(&mut self, needle: &str) {
        let rest = self.html[self.pos..].to_ascii_lowercase();
        self.pos = match rest.find(needle) {
            Some(i) => self.pos + i + needle.len(),
            None => self.html.len(),
        };
    }
}

impl Iterator for Tags<'_> {
    type Item = Tag;

    fn next(&mut self) -> Option<Tag> {
        let bytes = self.html.as_bytes();
        loop {
            let start = self.pos + self.html[self.pos..].find('<')?;
            self.pos = start + 1;
            if self.html[self.pos..].starts_with("!--") {
                self.skip_past("-->");
                continue;
            }
            let closing = bytes.get(self.pos) == Some(&b'/');
            if closing {
                self.pos += 1;
            }
            let name_len = bytes[self.pos..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'-').count();
            if name_len == 0 {
                // `<!DOCTYPE …>`, `<?xml …?>` or a stray `<` in text.
                continue;
            }
            let name = self.html[self.pos..self.pos + name_len].to_ascii_lowercase();
            self.pos += name_len;
            let attrs = self.attributes();
            if !closing && (name == "script" || name == "style") {
                self.skip_past(&format!("</{name}"));
            }
            return Some(Tag { name, closing, attrs });
        }
    }
}

impl Tags<'_> {
    /// Parses attributes up to and including the tag's closing `>`.
    fn attributes(&mut self) -> Vec<(String, String)> {
        let bytes = self.html.as_bytes();
        let mut attrs = Vec::new();
        let skip_ws = |pos: &mut usize| {
            while bytes.get(*pos).is_some_and(|b| b.is_ascii_whitespace()) {
                *pos += 1;
            }
        };
        let mut pos = self.pos;
        loop {
            skip_ws(&mut pos);
            match bytes.get(pos) {
                None => break,
                Some(b'>') => {
                    pos += 1;
                    break;
                }
                Some(b'/') => {
                    pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            let name_start = pos;
            while bytes.get(pos).is_some_and(|b| !b.is_ascii_whitespace() && !b"=>/".contains(b)) {
                pos += 1;
            }
            let name = self.html[name_start..pos].to_ascii_lowercase();
            let mut after_name = pos;
            skip_ws(&mut after_name);
            if bytes.get(after_name) != Some(&b'=') {
                attrs.push((name, String::new()));
                continue;
            }
            pos = after_name + 1;
            skip_ws(&mut pos);
            let raw = match bytes.get(pos) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let value_start = pos + 1;
                    let value_end =
                        bytes[value_start..].iter().position(|b| *b == quote).map_or(bytes.len(), |i| value_start + i);
                    pos = (value_end + 1).min(bytes.len());
                    &self.html[value_start..value_end]
                }
                _ => {
                    let value_start = pos;
                    while bytes.get(pos).is_some_and(|b| !b.is_ascii_whitespace() && *b != b'>') {
                        pos += 1;
                    }
                    &self.html[value_start..pos]
                }
            };
            attrs.push((name, decode_entities(raw)));
        }
        self.pos = pos;
        attrs
    }
}

/// Decodes the character references that show up in attribute values.
fn decode_entities(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let ch = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let code = if let Some(hex) = entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        entity.strip_prefix('#').and_then(|dec| dec.parse().ok())
                    };
                    code.and_then(char::from_u32)
                }
            };
            ch.map(|ch| (ch, end))
        });
        match decoded {
            Some((ch, end)) => {
                out.push(ch);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of the first form field called `name` on the page (a hidden input such as
/// `request` or `csrf_token`), decoded as a browser would submit it.
///
/// ```
/// let html = r#"<form method="post"><input type="hidden" name="csrf_token" value="a&amp;b"></form>"#;
/// assert_eq!(mcp_test_support::hidden_input(html, "csrf_token").as_deref(), Some("a&b"));
/// assert_eq!(mcp_test_support::hidden_input(html, "request"), None);
/// ```
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    find_forms(html).into_iter().flat_map(|form| form.fields).find(|(n, _)| n == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Sign in &ndash; Acme</title>
  <style>form > input { display: block }</style>
  <script>if (a < b) { document.write('<input name="evil" value="x">'); }</script>
</head>
<body>
  <!-- <form method="post" action="/not-this-one"><input name="nope"></form> -->
  <h1>Sign in to continue to “Claude”</h1>
  <FORM Method="POST" action='/login?flow=a&amp;b=1'>
    <input type="hidden" name="request" value="req_7f3&amp;x">
    <input type="hidden" name="csrf_token" value="tok&#x2F;en&quot;=">
    <label>Username <input type="text" name="username" autocomplete="username" required></label>
    <label>Password <input type=password name=password></label>
    <input type="checkbox" name="remember" value="yes">
    <input type="checkbox" name="terms" checked>
    <input name="note" value="caf&#233; ☕">
    <button type="submit" name="decision" value="allow">Allow</button>
    <button type="submit" name="decision" value="deny">Deny</button>
    <button type="button" name="help">?</button>
  </FORM>
  <form action="/search"><input name="q"></form>
</body>
</html>"#;

    #[test]
    fn scans_the_login_form() {
        let forms = find_forms(LOGIN_PAGE);
        assert_eq!(forms.len(), 2, "{forms:#?}");
        let login = &forms[0];
        assert_eq!(login.method, "post");
        assert_eq!(login.action.as_deref(), Some("/login?flow=a&b=1"));
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        assert_eq!(
            login.fields,
            pairs(&[
                ("request", "req_7f3&x"),
                ("csrf_token", "tok/en\"="),
                ("username", ""),
                ("password", ""),
                ("terms", "on"),
                ("note", "café ☕"),
            ])
        );
        assert_eq!(login.submit_buttons, pairs(&[("decision", "allow"), ("decision", "deny")]));
        assert_eq!(forms[1].method, "get");
        assert_eq!(forms[1].fields, pairs(&[("q", "")]));
    }

    #[test]
    fn fills_in_credentials_and_clicks_allow() {
        let mut form = find_forms(LOGIN_PAGE).remove(0);
        assert!(form.has_field("password"));
        form.set("username", "alice");
        form.set("password", "p&ss w0rd");
        let submission = form.submission(Some(("decision", "allow")));
        assert_eq!(submission.first().map(|(n, _)| n.as_str()), Some("request"));
        assert!(submission.contains(&("username".into(), "alice".into())));
        assert!(submission.contains(&("password".into(), "p&ss w0rd".into())));
        assert_eq!(submission.last(), Some(&("decision".to_string(), "allow".to_string())));
        assert!(!submission.iter().any(|(_, v)| v == "deny"));
        let deny = form.submission(Some(("decision", "deny")));
        assert_eq!(deny.last(), Some(&("decision".to_string(), "deny".to_string())));
    }

    #[test]
    fn decodes_entities() {
        assert_eq!(decode_entities("a&amp;b&lt;&gt;&#39;&#X41;"), "a&b<>'A");
        assert_eq!(decode_entities("fish & chips &unknown; &"), "fish & chips &unknown; &");
    }
}
