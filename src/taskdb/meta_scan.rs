//! A fast path for reading a task's stream keys out of its `metadata` text.
//!
//! Reading metadata was most of what a full read cost (serde_json's typed parse: about 3,300
//! instructions for a 130-byte object, against 1,900 for SQLite to hand the row over). The
//! shape tools write is simple: one object of plain strings, arrays of plain strings, numbers
//! and literals. This reads that shape in one pass over the bytes and gives up — returns
//! `None` — on anything else (an escape, a control character, a number where an id goes, a
//! known key twice, deep nesting, text after the object), leaving the decision to serde_json.
//!
//! Invariant: when it returns a value, serde_json's parse of the same text gives the same one
//! (the property test below holds it to that). It validates what it skips as strictly as
//! serde_json does, so a malformed text never passes as metadata.

use std::borrow::Cow;

use super::streams::{Deps, Files, IdValue, StreamMeta};

/// Nesting deeper than this is left to serde_json (and its recursion limit).
const MAX_DEPTH: usize = 32;

/// The stream keys of `text`, when it has the common shape; `None`: ask serde_json.
pub(crate) fn scan(text: &str) -> Option<StreamMeta<'_>> {
    let mut s = Scanner { text, at: 0 };
    let meta = s.object()?;
    s.ws();
    (s.at == text.len()).then_some(meta)
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

/// Which known keys an object had, so a second one gives up (serde: "duplicate field").
#[derive(Default)]
struct Seen(u16);

impl Seen {
    fn first(&mut self, bit: u16) -> Option<()> {
        let first = self.0 & (1 << bit) == 0;
        self.0 |= 1 << bit;
        first.then_some(())
    }
}

impl<'a> Scanner<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    /// Skips JSON's four whitespace bytes.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string without escapes or control characters, at its opening quote.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        // Metadata strings are short: a plain loop beats a vectorised search's set-up here.
        for (len, &b) in self.bytes()[start..].iter().enumerate() {
            match b {
                b'"' => {
                    self.at = start + len + 1;
                    // Both ends are ASCII quotes, so these are character boundaries.
                    return Some(&self.text[start..start + len]);
                }
                b'\\' | 0..0x20 => return None,
                _ => {}
            }
        }
        None
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes()
            .get(self.at..self.at + word.len())
            .filter(|w| *w == word)
            .map(|_| self.at += word.len())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, as serde_json accepts it.
    fn number(&mut self) -> Option<()> {
        let digits = |s: &mut Self| {
            let from = s.at;
            while s.peek().is_some_and(|b| b.is_ascii_digit()) {
                s.at += 1;
            }
            (s.at > from).then_some(())
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => digits(self)?,
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            digits(self)?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            digits(self)?;
        }
        Some(())
    }

    /// Any value, checked and skipped.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            b'[' => self.items(|s| {
                s.skip(depth + 1)?;
                Some(())
            }),
            b'{' => {
                self.at += 1;
                self.ws();
                if self.eat(b'}').is_some() {
                    return Some(());
                }
                loop {
                    self.ws();
                    self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b'}' => return self.eat(b'}'),
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }

    /// An array, each item handed to `item` (at the item, after whitespace).
    fn items(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            self.ws();
            item(self)?;
            self.ws();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => return self.eat(b']'),
                _ => return None,
            }
        }
    }

    /// `null` or a plain string (serde: `Option<Cow<str>>`).
    fn text_field(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        Some(Some(Cow::Borrowed(self.string()?)))
    }

    /// `null`, a plain string, or an array of plain strings (what `Deps` reads without
    /// looking further); a string that may hold a JSON array is left to serde_json.
    fn deps(&mut self) -> Option<Deps<'a>> {
        let mut ids = Vec::new();
        let mut push = |id: &'a str| {
            let id = id.trim();
            if id.starts_with('[') {
                return None;
            }
            if !id.is_empty() {
                ids.push(Cow::Borrowed(id));
            }
            Some(())
        };
        match self.peek()? {
            b'n' => self.literal(b"null")?,
            b'"' => push(self.string()?)?,
            b'[' => self.items(|s| push(s.string()?))?,
            _ => return None,
        }
        Some(Deps(ids))
    }

    /// `null`, a plain string or an array of plain strings; anything else (which serde_json
    /// reads as malformed paths, a warning) is left to serde_json.
    fn files(&mut self) -> Option<Files<'a>> {
        let mut files = Files::default();
        match self.peek()? {
            b'n' => self.literal(b"null")?,
            b'"' => files.push(self.string()?),
            b'[' => self.items(|s| {
                files.push(s.string()?);
                Some(())
            })?,
            _ => return None,
        }
        Some(files)
    }

    /// The top-level object.
    fn object(&mut self) -> Option<StreamMeta<'a>> {
        let mut meta = StreamMeta::default();
        let mut seen = Seen::default();
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(meta);
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            match key {
                "streamId" => {
                    seen.first(0)?;
                    meta.stream_id = match self.peek()? {
                        b'n' => self.literal(b"null").map(|_| None)?,
                        _ => Some(IdValue::text(self.string()?)),
                    };
                }
                "streamName" => {
                    seen.first(1)?;
                    meta.stream_name = self.text_field()?;
                }
                "streamPhase" => {
                    seen.first(2)?;
                    meta.stream_phase = self.text_field()?;
                }
                "worktreePath" => {
                    seen.first(3)?;
                    meta.worktree_path = self.text_field()?;
                }
                "branchName" => {
                    seen.first(4)?;
                    meta.branch_name = self.text_field()?;
                }
                "verify" => {
                    seen.first(5)?;
                    meta.verify = self.text_field()?;
                }
                "blockedReason" => {
                    seen.first(6)?;
                    meta.blocked_reason = self.text_field()?;
                }
                "dependencies" => {
                    seen.first(7)?;
                    meta.dependencies = self.deps()?;
                }
                "streamDependencies" => {
                    seen.first(8)?;
                    meta.stream_dependencies = self.deps()?;
                }
                "files" => {
                    seen.first(9)?;
                    meta.files = self.files()?;
                }
                _ => self.skip(1)?,
            }
            self.ws();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(meta);
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What the fold reads of a `StreamMeta`.
    fn seen(mut m: StreamMeta<'_>) -> Vec<Option<String>> {
        let owned = |c: Option<Cow<'_, str>>| c.map(Cow::into_owned);
        let deps = |d: Deps<'_>| Some(d.0.join("\u{1}"));
        let files = format!("{:?} {}", m.files.paths, m.files.malformed);
        vec![
            m.stream_id().map(Cow::into_owned),
            owned(m.stream_name),
            owned(m.stream_phase),
            owned(m.worktree_path),
            owned(m.branch_name),
            owned(m.verify),
            owned(m.blocked_reason),
            deps(m.dependencies),
            deps(m.stream_dependencies),
            Some(files),
        ]
    }

    fn agrees(text: &str) -> Result<(), TestCaseError> {
        if let Some(fast) = scan(text) {
            let slow = serde_json::from_str::<StreamMeta<'_>>(text);
            prop_assert!(
                slow.is_ok(),
                "fast path read {text:?}, serde_json refused it"
            );
            prop_assert_eq!(seen(fast), seen(slow.unwrap()), "{}", text);
        }
        Ok(())
    }

    fn value(depth: u32) -> BoxedStrategy<String> {
        let leaf = prop_oneof![
            "[a-zA-Z0-9 :\\[\\]./_-]{0,12}".prop_map(|s| format!("{s:?}")),
            Just(r#""with \" escape""#.to_string()),
            Just("\"tab\there\"".to_string()),
            "-?[0-9]{1,4}(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
            Just("01".to_string()),
            Just("1.".to_string()),
            Just("-".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            Just("null".to_string()),
            Just("nul".to_string()),
            Just("\" [\\\"A\\\"]\"".to_string()),
            Just("\" [A] \"".to_string()),
        ];
        if depth == 0 {
            return leaf.boxed();
        }
        prop_oneof![
            3 => leaf,
            1 => proptest::collection::vec(value(depth - 1), 0..4)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            1 => proptest::collection::vec((key(), value(depth - 1)), 0..4).prop_map(|kv| {
                let members: Vec<String> = kv.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
        .boxed()
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("streamId"),
            Just("streamName"),
            Just("streamPhase"),
            Just("worktreePath"),
            Just("branchName"),
            Just("verify"),
            Just("blockedReason"),
            Just("dependencies"),
            Just("streamDependencies"),
            Just("files"),
            Just("stream\\u0049d"),
        ]
        .prop_map(|k| format!("\"{k}\""))
    }

    fn object() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec((key(), value(2)), 0..6),
            "[ \t\n]{0,2}",
            prop_oneof![Just(""), Just(","), Just(" x"), Just("}")],
        )
            .prop_map(|(kv, ws, tail)| {
                let members: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{ws}{k}{ws}:{ws}{v}"))
                    .collect();
                format!("{ws}{{{}}}{tail}", members.join(","))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_fast_path_reads_what_serde_reads(text in object()) {
            agrees(&text)?;
        }

        #[test]
        fn the_fast_path_refuses_what_serde_refuses(text in object(), cut in any::<usize>(), byte in 0u8..128) {
            // A text damaged anywhere: cut short, or a byte changed.
            let end = cut % (text.len() + 1);
            agrees(text.get(..end).unwrap_or(&text))?;
            let mut bytes = text.clone().into_bytes();
            if !bytes.is_empty() {
                let at = cut % bytes.len();
                bytes[at] = byte;
                if let Ok(damaged) = String::from_utf8(bytes) {
                    agrees(&damaged)?;
                }
            }
        }
    }

    #[test]
    fn the_common_shape_takes_the_fast_path() {
        let text = r#"{"streamId": " Stream-A ", "streamName": "Foundation", "dependencies": ["B", " C ", ""], "files": ["src/a.rs"], "extra": ["x", {"x": [1, -2.5e3, true, null]}]}"#;
        let meta = scan(text).expect("the common shape");
        assert_eq!(
            seen(meta),
            [
                Some("Stream-A"),
                Some("Foundation"),
                None,
                None,
                None,
                None,
                None,
                Some("B\u{1}C"),
                Some(""),
                Some(r#"["src/a.rs"] false"#),
            ]
            .map(|s| s.map(str::to_string))
        );
        for other in [
            r#"{"streamId": 5}"#,
            r#"{"streamId": "A", "streamId": "B"}"#,
            r#"{"streamName": 5}"#,
            r#"{"dependencies": "[\"A\"]"}"#,
            r#"{"files": ["a", 1]}"#,
            r#"{"files": {"a": 1}}"#,
            r#"{"a": "\u0041"}"#,
            r#"[]"#,
            r#"{"a": 1} x"#,
        ] {
            assert!(scan(other).is_none(), "{other}");
        }
    }
}
