//! Colours, on or off. Every styled string goes through a [`Palette`] so "no colour" is one flag.

use console::Style;

#[derive(Debug, Clone, Copy)]
pub struct Palette {
    enabled: bool,
}

impl Palette {
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.enabled {
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }

    pub fn error(&self, t: &str) -> String {
        self.paint(Style::new().red().bold(), t)
    }
    pub fn warning(&self, t: &str) -> String {
        self.paint(Style::new().yellow().bold(), t)
    }
    pub fn hint(&self, t: &str) -> String {
        self.paint(Style::new().cyan().bold(), t)
    }
    pub fn good(&self, t: &str) -> String {
        self.paint(Style::new().green(), t)
    }
    pub fn bad(&self, t: &str) -> String {
        self.paint(Style::new().red(), t)
    }
    pub fn busy(&self, t: &str) -> String {
        self.paint(Style::new().cyan(), t)
    }
    pub fn caution(&self, t: &str) -> String {
        self.paint(Style::new().yellow(), t)
    }
    pub fn bold(&self, t: &str) -> String {
        self.paint(Style::new().bold(), t)
    }
    pub fn dim(&self, t: &str) -> String {
        self.paint(Style::new().dim(), t)
    }
}
