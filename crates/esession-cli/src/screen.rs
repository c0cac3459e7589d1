//! The chat's screen: where lines go (above the line being typed when a
//! terminal runs the line editor, plain standard output otherwise), colours
//! (never with `NO_COLOR` or when the output is not a terminal), local times,
//! and the date line when the day changes.

use std::io::IsTerminal as _;

use anstyle::{AnsiColor, Style};
use chrono::{Datelike as _, Local};

/// What kind of line: decides its colour.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Tone {
    /// Facts about the session (`***`).
    Info,
    /// Something the user must act on or know (`!!!`).
    Alert,
    /// Our own messages.
    Ours,
    /// The contact's messages.
    Theirs,
}

/// Prints lines for a person.
pub(crate) struct Screen {
    /// Prints above the line editor's input line, when one runs.
    writer: Option<rustyline_async::SharedWriter>,
    colour: bool,
    /// Day (year, ordinal) of the last timestamped line.
    last_day: Option<(i32, u32)>,
}

impl Screen {
    /// Plain standard output; colours when it is a terminal and `NO_COLOR` is unset.
    pub(crate) fn stdout() -> Self {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Self {
            writer: None,
            colour,
            last_day: None,
        }
    }

    /// Lines printed above the line editor's current input.
    pub(crate) fn set_writer(&mut self, writer: rustyline_async::SharedWriter) {
        self.writer = Some(writer);
    }

    /// Prints `text` (possibly several lines) in the colour of `tone`.
    pub(crate) fn line(&mut self, tone: Tone, text: &str) {
        let style = match tone {
            Tone::Info => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
            Tone::Alert => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
            Tone::Ours => Style::new().fg_color(Some(AnsiColor::Green.into())),
            Tone::Theirs => Style::new(),
        };
        let shown = if self.colour && style != Style::new() {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        };
        match &mut self.writer {
            Some(writer) => {
                use std::io::Write as _;
                if writeln!(writer, "{shown}").is_err() {
                    println!("{shown}");
                }
            }
            None => println!("{shown}"),
        }
    }

    /// A message line with the local time, `who` first ("me" for ours),
    /// after a date line when the day changed since the last one.
    pub(crate) fn message(&mut self, tone: Tone, who: &str, text: &str) {
        let now = Local::now();
        let day = (now.year(), now.ordinal());
        if self.last_day.is_some_and(|last| last != day) {
            self.line(
                Tone::Info,
                &format!("--- {} ---", now.format("%A %-d %B %Y")),
            );
        }
        self.last_day = Some(day);
        self.line(tone, &format!("[{}] {who}: {text}", now.format("%H:%M")));
    }
}

/// Where the conversation stands, always shown in the prompt and on every change.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Status {
    /// Logging in or reconnecting.
    Connecting,
    /// Online, no session and none being negotiated.
    NotEncrypted,
    /// Our offer (or the contact's) is being negotiated.
    Negotiating,
    /// Encrypted, and the contact is verified.
    Verified,
    /// Encrypted, but nobody verified who is at the other end.
    Unverified,
}

impl Status {
    /// The tag, e.g. `[encrypted][verified]`.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Self::Connecting => "[connecting]",
            Self::NotEncrypted => "[not encrypted]",
            Self::Negotiating => "[negotiating]",
            Self::Verified => "[encrypted][verified]",
            Self::Unverified => "[encrypted][UNVERIFIED]",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_say_what_protects_the_conversation() {
        assert_eq!(Status::Verified.tag(), "[encrypted][verified]");
        assert_eq!(Status::Unverified.tag(), "[encrypted][UNVERIFIED]");
        assert_eq!(Status::NotEncrypted.tag(), "[not encrypted]");
    }
}
