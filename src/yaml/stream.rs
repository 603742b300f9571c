//! UTF-8 text read from a file, as the fallible character stream `granit-parser` parses, so that
//! a large file is validated without ever being held whole: memory is one read buffer plus the
//! current document's tree (issue 11, point 1).

use std::cell::Cell;
use std::io::{self, BufRead};
use std::rc::Rc;

use granit_parser::{ErrorKind, InputIoError};

use super::Pos;

/// How much is read at a time.
const CHUNK: usize = 64 * 1024;

/// Where the text stopped being UTF-8 (or could not be read), shared with the caller: the
/// parser reports a source error at its own, read-ahead position.
pub type Failure = Rc<Cell<Option<(Pos, SourceError)>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceError {
    InvalidUtf8,
    Read,
}

/// The characters of `reader`, decoded as UTF-8 a chunk at a time, with the position of the next
/// character kept for error messages.
pub struct Utf8Chars<R> {
    reader: R,
    text: String,
    at: usize,
    /// The bytes of a character split across two reads.
    carry: Vec<u8>,
    /// Set once the decoded text ends in invalid bytes: reported when `text` is used up.
    invalid_after_text: bool,
    done: bool,
    next_pos: Pos,
    failure: Failure,
}

impl<R: BufRead> Utf8Chars<R> {
    pub fn new(reader: R) -> (Self, Failure) {
        let failure: Failure = Rc::new(Cell::new(None));
        let chars = Utf8Chars {
            reader,
            text: String::new(),
            at: 0,
            carry: Vec::new(),
            invalid_after_text: false,
            done: false,
            next_pos: Pos { line: 1, column: 1 },
            failure: Rc::clone(&failure),
        };
        (chars, failure)
    }

    fn fail(&mut self, kind: SourceError, error: ErrorKind) -> Option<Result<char, ErrorKind>> {
        self.done = true;
        self.failure.set(Some((self.next_pos, kind)));
        Some(Err(error))
    }

    /// Decode the next chunk into `text`. `Ok(false)` at the end of the input.
    fn refill(&mut self) -> io::Result<bool> {
        let mut bytes = std::mem::take(&mut self.carry);
        let read = {
            let available = self.reader.fill_buf()?;
            let take = available.len().min(CHUNK);
            bytes.extend_from_slice(&available[..take]);
            take
        };
        self.reader.consume(read);
        if read == 0 {
            // Input ended inside a character.
            self.invalid_after_text = !bytes.is_empty();
            self.text.clear();
            self.at = 0;
            return Ok(self.invalid_after_text);
        }
        let valid = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            Err(error) => {
                let valid = error.valid_up_to();
                match error.error_len() {
                    // A character cut by the end of this read: finish it with the next one.
                    None => self.carry = bytes[valid..].to_vec(),
                    Some(_) => self.invalid_after_text = true,
                }
                valid
            }
        };
        bytes.truncate(valid);
        // `bytes[..valid]` was just checked.
        self.text = String::from_utf8(bytes).unwrap_or_default();
        self.at = 0;
        Ok(true)
    }
}

impl<R: BufRead> Iterator for Utf8Chars<R> {
    type Item = Result<char, ErrorKind>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(c) = self.text[self.at..].chars().next() {
                self.at += c.len_utf8();
                self.next_pos = match c {
                    '\n' => Pos {
                        line: self.next_pos.line + 1,
                        column: 1,
                    },
                    _ => Pos {
                        column: self.next_pos.column + 1,
                        ..self.next_pos
                    },
                };
                return Some(Ok(c));
            }
            if self.done {
                return None;
            }
            if self.invalid_after_text {
                let error = ErrorKind::InputDecoding {
                    message: "invalid UTF-8".to_string(),
                };
                return self.fail(SourceError::InvalidUtf8, error);
            }
            match self.refill() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(error) => {
                    let error = ErrorKind::InputIo {
                        error: InputIoError::from_message(error.to_string()),
                    };
                    return self.fail(SourceError::Read, error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read, to split characters across reads.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn decode(bytes: &[u8], step: usize) -> (String, Option<(Pos, SourceError)>) {
        let reader = io::BufReader::with_capacity(step, Trickle { bytes, step });
        let (chars, failure) = Utf8Chars::new(reader);
        let text: String = chars.map_while(Result::ok).collect();
        (text, failure.get())
    }

    #[test]
    fn characters_split_across_reads_decode() {
        let text = "a: é中🙂\nb: ✓\n";
        for step in 1..8 {
            assert_eq!(
                decode(text.as_bytes(), step),
                (text.to_string(), None),
                "{step}"
            );
        }
    }

    #[test]
    fn invalid_bytes_stop_at_their_position() {
        let mut bytes = b"a: 1\nb: x".to_vec();
        bytes.push(0xff);
        bytes.extend_from_slice(b"yz\n");
        for step in [1, 3, 64] {
            let (text, failure) = decode(&bytes, step);
            assert_eq!(text, "a: 1\nb: x");
            assert_eq!(
                failure,
                Some((Pos { line: 2, column: 5 }, SourceError::InvalidUtf8))
            );
        }
        // A character cut short by the end of the input.
        let (text, failure) = decode(&"ok é".as_bytes()[..4], 2);
        assert_eq!(text, "ok ");
        assert_eq!(
            failure,
            Some((Pos { line: 1, column: 4 }, SourceError::InvalidUtf8))
        );
    }
}
