//! The compliance keywords a member may text (CTIA): the whole message,
//! trimmed, in any case — "stop by at 5" is a normal text.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Opt out at this church only.
    OptOut,
    /// Opt back in.
    OptIn,
    /// Ask who is texting and how to stop.
    Help,
}

impl Keyword {
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::OptOut => "opt_out",
            Keyword::OptIn => "opt_in",
            Keyword::Help => "help",
        }
    }
}

const OPT_OUT: [&str; 9] = [
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
const OPT_IN: [&str; 3] = ["START", "UNSTOP", "YES"];
const HELP: [&str; 2] = ["HELP", "INFO"];

/// The keyword `text` is, if it is one.
pub fn classify(text: &str) -> Option<Keyword> {
    // Inner runs of spaces count as one ("STOP  ALL").
    let words: Vec<&str> = text.split_whitespace().collect();
    let normalized = words.join(" ").to_uppercase();
    let is = |list: &[&str]| list.contains(&normalized.as_str());
    if is(&OPT_OUT) {
        Some(Keyword::OptOut)
    } else if is(&OPT_IN) {
        Some(Keyword::OptIn)
    } else if is(&HELP) {
        Some(Keyword::Help)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_message_any_case_surrounding_space() {
        for text in [
            "STOP",
            "stop",
            "  Stop \n",
            "stop all",
            "STOPALL",
            "optout",
            "Quit",
        ] {
            assert_eq!(classify(text), Some(Keyword::OptOut), "{text:?}");
        }
        for text in ["start", " UNSTOP", "yes "] {
            assert_eq!(classify(text), Some(Keyword::OptIn), "{text:?}");
        }
        for text in ["help", "Info"] {
            assert_eq!(classify(text), Some(Keyword::Help), "{text:?}");
        }
    }

    #[test]
    fn extra_words_make_a_normal_text() {
        for text in [
            "stop by at 5",
            "please stop",
            "yes please",
            "help me move chairs",
            "",
            "STOP!",
        ] {
            assert_eq!(classify(text), None, "{text:?}");
        }
    }
}
