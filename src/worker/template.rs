//! Filling templates in one pass: the worker prompt (`{{name}}`) and the words of the worker
//! command (`{name}`).
//!
//! Invariant: a template is scanned once, left to right, and each value is copied into the
//! result as written, never scanned again. Values come from the task database (titles, stream
//! ids and names), which is untrusted: filled by a chain of `replace` calls, one 18 KB row of
//! placeholders multiplied itself into a 3.3 GB allocation, and a `{…}` in a title was filled
//! in a second time. Placeholders without a value stay as written, so a typo shows.

/// How a placeholder is written.
#[derive(Debug, Clone, Copy)]
pub struct Syntax {
    open: &'static str,
    close: &'static str,
}

/// `{{name}}`: the prompt template (Markdown, where single braces are common).
pub const PROMPT: Syntax = Syntax {
    open: "{{",
    close: "}}",
};

/// `{name}`: the words of the worker command.
pub const COMMAND: Syntax = Syntax {
    open: "{",
    close: "}",
};

/// `template` with each placeholder named in `values` replaced by its value, in one pass.
pub fn fill(template: &str, syntax: Syntax, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find(syntax.open) {
        out.push_str(&rest[..at]);
        let inner = &rest[at + syntax.open.len()..];
        match values
            .iter()
            .find(|(name, _)| is_named(inner, name, syntax))
        {
            Some((name, value)) => {
                out.push_str(value);
                rest = &inner[name.len() + syntax.close.len()..];
            }
            None => {
                // Not ours: keep its first brace and look again one character on, so that
                // `{{{name}}}` still finds `{{name}}` inside.
                out.push_str(&syntax.open[..1]);
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Which of `names` appear as placeholders in `text`.
pub fn used<'n>(text: &str, syntax: Syntax, names: &[&'n str]) -> Vec<&'n str> {
    names
        .iter()
        .copied()
        .filter(|name| {
            text.match_indices(syntax.open)
                .any(|(at, _)| is_named(&text[at + syntax.open.len()..], name, syntax))
        })
        .collect()
}

/// Placeholder-like words in `text` (`{word}`, a word of letters, digits and `_`) that are not
/// among `known`: they will be passed as written.
pub fn unknown(text: &str, syntax: Syntax, known: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(syntax.open) {
        let inner = &rest[at + syntax.open.len()..];
        let Some(end) = inner.find(syntax.close) else {
            break;
        };
        let name = &inner[..end];
        let is_word =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if is_word && !known.contains(&name) {
            found.push(format!("{}{name}{}", syntax.open, syntax.close));
        }
        rest = &inner[end + syntax.close.len()..];
    }
    found
}

/// Whether `inner` (the text just after an opening brace) starts with `name` and the close.
fn is_named(inner: &str, name: &str, syntax: Syntax) -> bool {
    inner
        .strip_prefix(name)
        .is_some_and(|after| after.starts_with(syntax.close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_known_names_and_keeps_the_rest() {
        let values = [("a", "1"), ("bb", "22")];
        assert_eq!(fill("{{a}}-{{bb}}-{{c}}", PROMPT, &values), "1-22-{{c}}");
        assert_eq!(fill("{a}{{a}}{a", COMMAND, &values), "1{1}{a");
        assert_eq!(fill("{{{a}}}", PROMPT, &values), "{1}");
        assert_eq!(
            fill("{{ a}} {{a }} {{}}", PROMPT, &values),
            "{{ a}} {{a }} {{}}"
        );
        assert_eq!(fill("ünï{{a}}cödé{{", PROMPT, &values), "ünï1cödé{{");
        assert_eq!(fill("", PROMPT, &values), "");
    }

    #[test]
    fn values_are_never_scanned_again() {
        let values = [("a", "{{b}}{{a}}"), ("b", "{{a}}")];
        assert_eq!(fill("{{a}}|{{b}}", PROMPT, &values), "{{b}}{{a}}|{{a}}");
    }

    #[test]
    fn the_result_grows_only_by_the_values_placed() {
        // 2,000 placeholders in a value whose own placeholders would multiply it.
        let big = "{{a}}".repeat(2000);
        let values = [("a", big.as_str())];
        let text = fill(&"{{a}}".repeat(3), PROMPT, &values);
        assert_eq!(text.len(), 3 * big.len());
    }

    #[test]
    fn lists_used_and_unknown_placeholders() {
        let known = ["prompt", "stream"];
        assert_eq!(used("x{stream}y {prompt", COMMAND, &known), ["stream"]);
        assert_eq!(
            unknown("{promt} {stream} {a b} {x_1}", COMMAND, &known),
            ["{promt}", "{x_1}"]
        );
        assert!(unknown("{{stream}}", PROMPT, &["stream"]).is_empty());
    }
}
