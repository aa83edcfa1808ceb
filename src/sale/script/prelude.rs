//! The part of `lua/common.lua` a script is loaded with: only the top-level definitions its
//! body uses, directly or through another definition, in the file's order.
//!
//! Redis runs the whole text of a script on every EVALSHA, so every helper defined in it is
//! a closure (and every table a table) made again on every call, whether the call uses it or
//! not; before, each script carried all of `common.lua`, and a poll near the head paid for
//! some forty definitions it mostly never called.
//!
//! How `common.lua` is read (its header says the same): a definition starts with `local` at
//! the start of a line and runs to the next line that starts with `local` or `--`; what it
//! defines is the name after `local function`, or the names before its `=`. A text uses the
//! names that appear in it outside comments and strings (field names included: a definition
//! too many is harmless, one too few is an error in Redis, which the tests below rule out).
//! The definitions left out become empty lines, so that a line number in one of Redis's error
//! messages is still the same line of `common.lua`.
//!
//! A script whose common case needs few helpers and whose rare case needs many (the poll: a
//! waiting buyer near the head with nothing due, against lapsing, admitting and offering) marks
//! where its rare case starts with a line [`SLOW_PATH`]. The part before it runs as usual; the
//! part after it runs inside a function, which defines first the helpers only that part uses:
//! a call that returns before the mark never makes them. (Their line numbers in Redis's errors
//! are then those of the loaded text, not of `common.lua`.)
//!
//! Nor is the table of the sale's keys made (`K`, sixteen fields): each `K.sale` is written as
//! the `KEYS[1]` it stands for ([`KeyTable`]).

use std::collections::HashSet;
use std::ops::Range;

/// The line of a script's body after which its slow path starts (see above).
pub(super) const SLOW_PATH: &str = "-- slow path: the helpers only this part uses are defined when it runs";

/// What the loaded text wraps a slow path in: a function called at once, whose locals (the
/// helpers only that path uses) are made only when the call gets there.
const SLOW_PATH_OPENS: &str = "\nreturn (function()\n";
const SLOW_PATH_CLOSES: &str = "\nend)()\n";

/// A script's body split at its [`SLOW_PATH`] line: the common case, and the slow path if any.
fn split_at_slow_path(body: &str) -> (&str, Option<&str>) {
    match body.split_once(&format!("\n{SLOW_PATH}\n")) {
        Some((fast, slow)) => (fast, Some(slow)),
        None => (body, None),
    }
}

/// `common` with only the definitions `body` uses, followed by `body`; with the helpers only
/// its slow path uses defined at the start of that path.
pub(super) fn assemble(common: &str, body: &str) -> String {
    let lines: Vec<&str> = common.lines().collect();
    let definitions = definitions(&lines);
    let keys = KeyTable::of(&lines, &definitions);
    // The key table is never made: its uses are written out (see `KeyTable`).
    let mut made = vec![false; definitions.len()];
    if let Some(keys) = &keys {
        made[keys.definition] = true;
    }
    let (fast, slow) = split_at_slow_path(body);
    let at_top = used(&lines, &definitions, fast, &made);
    let mut left_out = vec![false; lines.len()];
    for (definition, kept) in definitions.iter().zip(&at_top) {
        if !kept {
            left_out[definition.lines.clone()].fill(true);
        }
    }
    let mut text = String::with_capacity(common.len() + body.len() + 1);
    for (line, left_out) in lines.iter().zip(left_out) {
        if !left_out {
            text.push_str(line);
        }
        text.push('\n');
    }
    text.push('\n');
    text.push_str(fast);
    if let Some(slow) = slow {
        let made: Vec<bool> = made.iter().zip(&at_top).map(|(a, b)| *a || *b).collect();
        let in_slow = used(&lines, &definitions, slow, &made);
        text.push_str(SLOW_PATH_OPENS);
        for (definition, wanted) in definitions.iter().zip(in_slow) {
            if wanted {
                for i in definition.lines.clone() {
                    text.push_str(lines[i]);
                    text.push('\n');
                }
            }
        }
        text.push_str(slow);
        text.push_str(SLOW_PATH_CLOSES);
    }
    match &keys {
        Some(keys) => keys.written_out(&text),
        None => text,
    }
}

/// The sale keys' table of `common.lua`, `local K = { sale = KEYS[1], … }`, which a script's
/// text does not make: each `K.sale` in it is written as the `KEYS[1]` it stands for, on the
/// same line. Sixteen fields put into a new table on every call cost about 1 µs of a poll near
/// the head (BENCHMARKS.md); reading `KEYS[1]` costs what reading `K.sale` did.
struct KeyTable<'a> {
    /// Which definition of `common.lua` makes it.
    definition: usize,
    /// Each key's name and the text it is written as.
    keys: Vec<(&'a str, &'a str)>,
}

impl<'a> KeyTable<'a> {
    const NAME: &'static str = "K";

    fn of(lines: &[&'a str], definitions: &[Definition]) -> Option<Self> {
        let definition = definitions.iter().position(|d| d.names == [Self::NAME])?;
        let mut keys = Vec::new();
        for line in &lines[definitions[definition].lines.clone()] {
            let fields = line.split_once('{').map_or(*line, |(_, after)| after);
            let fields = fields.split_once('}').map_or(fields, |(before, _)| before);
            for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                let (name, value) = field.split_once('=')?;
                keys.push((name.trim(), value.trim()));
            }
        }
        Some(KeyTable { definition, keys })
    }

    /// `text` with every `K.<key>` written as its value.
    fn written_out(&self, text: &str) -> String {
        let tokens = spanned_tokens(text);
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for (i, window) in tokens.windows(3).enumerate() {
            let [
                (table, Token::Name(Self::NAME)),
                (_, Token::Punct(b'.')),
                (field, Token::Name(name)),
            ] = window
            else {
                continue;
            };
            // `x.K.sale` would be a field of x, not this table.
            if i > 0 && matches!(tokens[i - 1].1, Token::Punct(b'.' | b':')) {
                continue;
            }
            if let Some((_, value)) = self.keys.iter().find(|(key, _)| key == name) {
                out.push_str(&text[copied..table.start]);
                out.push_str(value);
                copied = field.end;
            }
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// Which definitions `text` needs, directly or through another, that `defined` (one flag per
/// definition) does not have already.
fn used(lines: &[&str], definitions: &[Definition], text: &str, defined: &[bool]) -> Vec<bool> {
    let mut wanted: HashSet<&str> = names(text).collect();
    let mut needed = vec![false; definitions.len()];
    // A local is only seen by the lines after it, so a definition uses only earlier ones: one
    // pass from the last definition to the first finds them all.
    for (i, definition) in definitions.iter().enumerate().rev() {
        if !defined[i] && definition.names.iter().any(|name| wanted.contains(name)) {
            needed[i] = true;
            wanted.extend(definition.lines.clone().flat_map(|l| names(lines[l])));
        }
    }
    needed
}

/// One top-level definition of `common.lua`: the names it defines and its lines.
#[derive(Debug)]
struct Definition<'a> {
    names: Vec<&'a str>,
    lines: Range<usize>,
}

fn definitions<'a>(lines: &[&'a str]) -> Vec<Definition<'a>> {
    let mut found: Vec<Definition> = Vec::new();
    let mut open = false;
    for (i, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("local ") {
            let declared = match rest.strip_prefix("function ") {
                Some(function) => function.split('(').next().unwrap_or_default(),
                None => rest.split('=').next().unwrap_or_default(),
            };
            found.push(Definition {
                names: declared.split(',').map(str::trim).collect(),
                lines: i..i + 1,
            });
            open = true;
        } else if line.starts_with("--") {
            open = false;
        } else if open && let Some(last) = found.last_mut() {
            last.lines.end = i + 1;
        }
    }
    found
}

/// A token of Lua text: a name, or a character of punctuation. Comments, strings, numbers and
/// white space are left out. (Neither `common.lua` nor a script uses long brackets, `[[ ]]`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    Name(&'a str),
    Punct(u8),
}

fn tokens(text: &str) -> Vec<Token<'_>> {
    spanned_tokens(text).into_iter().map(|(_, token)| token).collect()
}

/// The tokens of `text` with where each is in it.
fn spanned_tokens(text: &str) -> Vec<(Range<usize>, Token<'_>)> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'\'' || c == b'"' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            found.push((start..i, Token::Name(&text[start..i])));
        } else if c.is_ascii_digit() {
            // 1e14, 0xff: letters in a number are not a name
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else {
            if !c.is_ascii_whitespace() {
                found.push((i..i + 1, Token::Punct(c)));
            }
            i += 1;
        }
    }
    found
}

fn names(text: &str) -> impl Iterator<Item = &str> {
    tokens(text).into_iter().filter_map(|t| match t {
        Token::Name(name) => Some(name),
        Token::Punct(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{COMMON, ScriptName};
    use super::*;

    const KEYWORDS: &[&str] = &[
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in", "local", "nil", "not",
        "or", "repeat", "return", "then", "true", "until", "while",
    ];
    /// What Redis's Lua offers every script without a definition.
    const GLOBALS: &[&str] = &[
        "KEYS", "ARGV", "redis", "math", "string", "table", "tonumber", "tostring", "ipairs", "pairs", "unpack",
        "type", "error", "select", "next", "pcall", "assert", "cjson", "bit", "struct", "cmsgpack",
    ];

    /// The names a text reads without a `.` or `:` before them (a field, a method) and that are
    /// not a key of a table constructor (`{ sale = …, queue = … }`).
    fn free_names(text: &str) -> Vec<&str> {
        let t = tokens(text);
        let punct = |i: Option<usize>, c: u8| i.and_then(|i| t.get(i)) == Some(&Token::Punct(c));
        let mut free = Vec::new();
        for (i, token) in t.iter().enumerate() {
            let Token::Name(name) = *token else { continue };
            let before = i.checked_sub(1);
            let field = (punct(before, b'.') && !punct(i.checked_sub(2), b'.')) || punct(before, b':');
            let key =
                (punct(before, b'{') || punct(before, b',')) && punct(Some(i + 1), b'=') && !punct(Some(i + 2), b'=');
            if !field && !key && !KEYWORDS.contains(&name) {
                free.push(name);
            }
        }
        free
    }

    /// Every name a text declares anywhere: locals, functions, their parameters, loop variables.
    fn declared_names(text: &str) -> HashSet<&str> {
        let t = tokens(text);
        let mut declared = HashSet::new();
        let mut i = 0;
        while i < t.len() {
            let list_from = match t[i] {
                Token::Name("local") | Token::Name("for") => Some(i + 1),
                Token::Name("function") => t[i..].iter().position(|t| *t == Token::Punct(b'(')).map(|p| i + p + 1),
                _ => None,
            };
            if let Some(mut j) = list_from {
                if t.get(j) == Some(&Token::Name("function")) {
                    j += 1;
                }
                // a list of names, one after each comma
                while let Some(Token::Name(name)) = t.get(j) {
                    declared.insert(*name);
                    if t.get(j + 1) != Some(&Token::Punct(b',')) {
                        break;
                    }
                    j += 2;
                }
            }
            i += 1;
        }
        declared
    }

    /// The names a text reads that it never declares and Redis does not offer.
    fn undefined_names(text: &str) -> Vec<&str> {
        let declared = declared_names(text);
        let mut seen = HashSet::new();
        free_names(text)
            .into_iter()
            .filter(|name| !declared.contains(name) && !GLOBALS.contains(name) && seen.insert(*name))
            .collect()
    }

    /// The top-level definitions a loaded text keeps, by name.
    fn kept_definitions(text: &str) -> HashSet<&str> {
        let lines: Vec<&str> = text.lines().collect();
        definitions(&lines).into_iter().flat_map(|d| d.names).collect()
    }

    #[test]
    fn every_name_a_script_reads_is_defined_in_the_text_it_is_loaded_with() {
        let common_names = kept_definitions(COMMON);
        for name in ScriptName::ALL {
            let text = assemble(COMMON, name.body());
            assert_eq!(undefined_names(&text), Vec::<&str>::new(), "{name:?}");
            // A helper of common.lua the script calls is that helper, not a local of the same
            // name declared somewhere else in the text.
            let kept = kept_definitions(&text);
            for used in free_names(&text) {
                assert!(
                    !common_names.contains(used) || kept.contains(used),
                    "{name:?} reads {used} but is loaded without its definition"
                );
            }
        }
    }

    #[test]
    fn the_check_finds_a_helper_left_out() {
        let text = "local K = { sale = KEYS[1] }\nlocal function a(x) return b(x, K.sale) .. c end\nreturn a(1)";
        assert_eq!(undefined_names(text), vec!["b", "c"]);
        let body = "return lapse(load_sale(), 0)";
        let mut text = assemble(COMMON, body);
        assert_eq!(undefined_names(&text), Vec::<&str>::new());
        text = text.replace("local function save_holds", "local function save_holds_gone");
        assert_eq!(undefined_names(&text), vec!["save_holds"]);
    }

    #[test]
    fn a_script_is_loaded_with_the_definitions_it_uses_and_no_others() {
        let status = ScriptName::Status.text();
        let status = kept_definitions(&status);
        assert!(!status.contains("K"), "the key table is written out, not made");
        for used in [
            "load_sale",
            "get_res",
            "now_ms",
            "touch",
            "admit",
            "mark_near",
            "describe",
        ] {
            assert!(status.contains(used), "status needs {used}");
        }
        for unused in [
            "enqueue",
            "newest_code",
            "describe_entry",
            "ENTRY_NAMES",
            "PENDING",
            "admission_window",
        ] {
            assert!(!status.contains(unused), "status does not use {unused}");
        }
        let wl_status = ScriptName::WaitlistStatus.text();
        let wl_status = kept_definitions(&wl_status);
        assert!(wl_status.contains("describe_entry") && wl_status.contains("ENTRY_NAMES"));
    }

    #[test]
    fn the_common_case_of_a_poll_defines_only_the_helpers_it_uses() {
        let status = ScriptName::Status.text();
        let (common_case, slow_path) = status.split_once(SLOW_PATH_OPENS).expect("the poll has a slow path");
        let at_top = kept_definitions(common_case);
        for used in [
            "load_sale",
            "get_res",
            "touch",
            "rank_of",
            "describe",
            "may_admit",
            "final_state",
        ] {
            assert!(at_top.contains(used), "the common case needs {used}");
        }
        let in_slow_path = kept_definitions(slow_path);
        for rare in [
            "lapse",
            "admit",
            "mark_near",
            "offer_waitlist",
            "settle_waiting",
            "sell_out",
        ] {
            assert!(!at_top.contains(rare), "{rare} is made on every poll");
            assert!(in_slow_path.contains(rare), "the slow path needs {rare}");
        }
        // Each helper is made once: none of the slow path's is also at the top.
        let common = kept_definitions(COMMON);
        let twice: Vec<_> = at_top
            .intersection(&in_slow_path)
            .filter(|name| common.contains(*name))
            .collect();
        assert!(twice.is_empty(), "made twice: {twice:?}");
    }

    #[test]
    fn the_sale_keys_are_written_out_and_their_table_never_made() {
        let common: Vec<&str> = COMMON.lines().collect();
        let keys = KeyTable::of(&common, &definitions(&common)).expect("common.lua has the key table");
        assert_eq!(keys.keys.len(), 16);
        assert_eq!(keys.keys[0], ("sale", "KEYS[1]"));
        assert_eq!(keys.keys[15], ("wlinfo", "KEYS[16]"));
        let text = "local a = K.sale -- K.res\nredis.call('HGET', K.res, 'K.sale', x.K.sale, K.other)\n";
        assert_eq!(
            keys.written_out(text),
            "local a = KEYS[1] -- K.res\nredis.call('HGET', KEYS[5], 'K.sale', x.K.sale, K.other)\n"
        );
        for name in ScriptName::ALL {
            let text = assemble(COMMON, name.body());
            let table = spanned_tokens(&text)
                .into_iter()
                .any(|(_, t)| t == Token::Name(KeyTable::NAME));
            assert!(!table, "{name:?} reads K");
        }
    }

    #[test]
    fn common_lua_keeps_its_line_numbers_in_every_script() {
        let common: Vec<&str> = COMMON.lines().collect();
        let keys = KeyTable::of(&common, &definitions(&common)).expect("common.lua has the key table");
        for name in ScriptName::ALL {
            let text = assemble(COMMON, name.body());
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in common.iter().enumerate() {
                assert!(
                    lines[i] == keys.written_out(line) || lines[i].is_empty(),
                    "{name:?} line {}",
                    i + 1
                );
            }
            match split_at_slow_path(name.body()) {
                (body, None) => assert!(text.ends_with(&keys.written_out(body))),
                (fast, Some(slow)) => {
                    let (fast, slow) = (keys.written_out(fast), keys.written_out(slow));
                    assert!(
                        text.contains(&fast) && text.ends_with(&format!("{slow}{SLOW_PATH_CLOSES}")),
                        "{name:?}"
                    )
                }
            }
            assert!(!text.contains("[["), "long brackets are not read: {name:?}");
        }
    }

    #[test]
    fn every_line_of_common_lua_is_a_comment_or_part_of_a_definition() {
        let lines: Vec<&str> = COMMON.lines().collect();
        let mut covered = vec![false; lines.len()];
        for definition in definitions(&lines) {
            covered[definition.lines].fill(true);
        }
        for (i, line) in lines.iter().enumerate() {
            assert!(
                covered[i] || line.is_empty() || line.starts_with("--"),
                "common.lua line {}: {line}",
                i + 1
            );
        }
    }
}
