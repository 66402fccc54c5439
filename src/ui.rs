//! How irm's messages for people look: whether stderr gets colour.
use policy_lang::Style;
use std::io::IsTerminal;

/// The `--color` option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal, `NO_COLOR` is unset or empty and `TERM` is not
    /// `dumb`.
    #[default]
    Auto,
    /// Always colour (even when `NO_COLOR` is set: the option is the more specific wish).
    Always,
    /// Never colour.
    Never,
}

/// What every command prints with: decided once, from the option and the environment.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    /// How diagnostics and error lines on stderr are drawn.
    pub style: Style,
}

impl Ui {
    pub fn new(choice: ColorChoice) -> Ui {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
                let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
                !no_color && !dumb && std::io::stderr().is_terminal()
            }
        };
        Ui {
            style: if color { Style::Ansi } else { Style::Plain },
        }
    }

    /// `irm: error:`, with `error` in bold red when colouring.
    pub fn error_prefix(&self) -> String {
        match self.style {
            Style::Plain => "irm: error:".to_string(),
            Style::Ansi => {
                let red = anstyle::Style::new()
                    .bold()
                    .fg_color(Some(anstyle::AnsiColor::BrightRed.into()));
                format!("irm: {red}error{red:#}:")
            }
        }
    }
}
