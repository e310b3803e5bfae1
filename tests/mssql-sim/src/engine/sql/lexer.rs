//! Splits T-SQL text into tokens: identifiers (`[..]` with `]]`, `".."`), strings (`'..'`
//! and `N'..'` with `''`), numbers, variables (`@x`, `@@NAME`), symbols, and skips comments.

/// One token and the line of the batch it starts on (1-based, as SQL Server counts).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub line: i32,
    /// The source text of the token, as error 102 quotes it.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// A regular identifier or keyword, as written.
    Word(String),
    /// A delimited identifier with its escapes removed.
    QuotedIdent(String),
    /// A string literal with `''` unescaped; `national` for `N'..'`.
    Str {
        value: String,
        national: bool,
    },
    Number(String),
    /// `@name` or `@@NAME`, including the at signs.
    Variable(String),
    /// Punctuation and operators: `, ( ) . ; = <> != < > <= >= * + -`.
    Symbol(&'static str),
}

/// A lexical error, reported by SQL Server as error 105 or 102.
#[derive(Debug, Clone, PartialEq)]
pub enum LexError {
    /// Error 105: a string or delimited identifier runs to the end of the batch.
    Unclosed { text: String, line: i32 },
    /// Error 102: a character that starts no token.
    Unexpected { text: String, line: i32 },
}

const SYMBOLS: [&str; 15] = [
    "<>", "!=", "<=", ">=", ",", "(", ")", ".", ";", "=", "<", ">", "*", "+", "-",
];

/// Tokenizes a whole batch.
///
/// # Errors
/// An unclosed string, delimited identifier or comment, or a stray character.
pub fn tokenize(sql: &str) -> Result<Vec<Token>, LexError> {
    let mut lexer = Lexer {
        chars: sql.chars().collect(),
        pos: 0,
        line: 1,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: i32,
    tokens: Vec<Token>,
}

impl Lexer {
    fn run(&mut self) -> Result<(), LexError> {
        while let Some(c) = self.peek(0) {
            let line = self.line;
            let start = self.pos;
            let kind = match c {
                '\n' => {
                    self.line += 1;
                    self.pos += 1;
                    continue;
                }
                c if c.is_whitespace() => {
                    self.pos += 1;
                    continue;
                }
                '-' if self.peek(1) == Some('-') => {
                    self.skip_line_comment();
                    continue;
                }
                '/' if self.peek(1) == Some('*') => {
                    self.skip_block_comment()?;
                    continue;
                }
                '[' => TokenKind::QuotedIdent(self.delimited(']')?),
                '"' => TokenKind::QuotedIdent(self.delimited('"')?),
                '\'' => TokenKind::Str {
                    value: self.delimited('\'')?,
                    national: false,
                },
                'N' | 'n' if self.peek(1) == Some('\'') => {
                    self.pos += 1;
                    TokenKind::Str {
                        value: self.delimited('\'')?,
                        national: true,
                    }
                }
                '@' => TokenKind::Variable(self.take_while(|c| c == '@' || is_word_char(c))),
                c if c.is_ascii_digit() => TokenKind::Number(self.number()),
                c if is_word_start(c) => TokenKind::Word(self.take_while(is_word_char)),
                _ => TokenKind::Symbol(self.symbol()?),
            };
            let text: String = self.chars[start..self.pos].iter().collect();
            self.tokens.push(Token { kind, line, text });
        }
        Ok(())
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn take_while(&mut self, accept: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek(0).is_some_and(&accept) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn number(&mut self) -> String {
        let mut text = self.take_while(|c| c.is_ascii_digit());
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            text.push('.');
            text.push_str(&self.take_while(|c| c.is_ascii_digit()));
        }
        text
    }

    /// Reads a quoted run that starts at the current opening character and ends at
    /// `close`; a doubled `close` stands for one.
    fn delimited(&mut self, close: char) -> Result<String, LexError> {
        let start = self.pos;
        let start_line = self.line;
        self.pos += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                let text: String = self.chars[start + 1..].iter().collect();
                return Err(LexError::Unclosed {
                    text,
                    line: start_line,
                });
            };
            self.pos += 1;
            if c == close {
                if self.peek(0) == Some(close) {
                    self.pos += 1;
                } else {
                    return Ok(value);
                }
            }
            if c == '\n' {
                self.line += 1;
            }
            value.push(c);
        }
    }

    fn skip_line_comment(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.pos += 1;
        }
    }

    /// Skips a `/* */` comment; T-SQL comments nest.
    fn skip_block_comment(&mut self) -> Result<(), LexError> {
        let line = self.line;
        let mut depth = 0;
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some('/'), Some('*')) => {
                    depth += 1;
                    self.pos += 2;
                }
                (Some('*'), Some('/')) => {
                    depth -= 1;
                    self.pos += 2;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                (Some(c), _) => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    self.pos += 1;
                }
                // SQL Server reports error 113 "Missing end comment mark '*/'."; the
                // parser maps this case to it.
                (None, _) => {
                    return Err(LexError::Unclosed {
                        text: "*/".into(),
                        line,
                    })
                }
            }
        }
    }

    fn symbol(&mut self) -> Result<&'static str, LexError> {
        for symbol in SYMBOLS {
            let matches = symbol
                .chars()
                .enumerate()
                .all(|(i, c)| self.peek(i) == Some(c));
            if matches {
                self.pos += symbol.chars().count();
                return Ok(symbol);
            }
        }
        let text = self.peek(0).map(String::from).unwrap_or_default();
        Err(LexError::Unexpected {
            text,
            line: self.line,
        })
    }
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '#'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '#' | '$' | '@')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<TokenKind> {
        tokenize(sql)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    #[test]
    fn lexer_unescapes_bracket_identifier() {
        assert_eq!(
            kinds("[a]]b c]"),
            vec![TokenKind::QuotedIdent("a]b c".into())]
        );
    }

    #[test]
    fn lexer_unescapes_national_string() {
        let expected = TokenKind::Str {
            value: "it's Zürich".into(),
            national: true,
        };
        assert_eq!(kinds("N'it''s Zürich'"), vec![expected]);
    }

    #[test]
    fn lexer_reads_variables_and_symbols() {
        let tokens = kinds("@@SPID<>@x");
        assert_eq!(tokens[0], TokenKind::Variable("@@SPID".into()));
        assert_eq!(tokens[1], TokenKind::Symbol("<>"));
        assert_eq!(tokens[2], TokenKind::Variable("@x".into()));
    }

    #[test]
    fn lexer_skips_comments_and_counts_lines() {
        let tokens = tokenize("-- a\n/* b /* nested */\n*/ SELECT").unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].line, 3);
    }

    #[test]
    fn lexer_rejects_unclosed_string() {
        let error = tokenize("SELECT 'abc").unwrap_err();
        assert_eq!(
            error,
            LexError::Unclosed {
                text: "abc".into(),
                line: 1
            }
        );
    }

    #[test]
    fn lexer_reads_decimal_number() {
        assert_eq!(kinds("1.5"), vec![TokenKind::Number("1.5".into())]);
    }
}
