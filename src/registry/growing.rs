//! A file that another thread is still writing, read as an upload body that waits for the next
//! bytes (docs/push.md#streamed-layer-upload). The packer writes the compressed layer into its
//! temporary file and announces how far it got; the upload sends what is there and waits for
//! more, so the bytes leave while the rest is still being compressed.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::AsyncReadExt as _;
use tokio::sync::watch;

/// How far the writer got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    /// Bytes in the file that will not change any more.
    written: u64,
    /// The writer is done: `written` is the file's final length.
    finished: bool,
}

/// The writing side. Dropping it without [`Writer::finish`] (packing failed or was stopped)
/// makes the reading side fail instead of waiting for bytes that never come.
#[derive(Debug)]
pub struct Writer(watch::Sender<Progress>);

impl Writer {
    /// The first `total` bytes of the file are written.
    pub fn wrote(&self, total: u64) {
        self.0.send_modify(|progress| progress.written = total);
    }

    /// The file is complete at `size` bytes.
    pub fn finish(self, size: u64) {
        self.0.send_replace(Progress {
            written: size,
            finished: true,
        });
    }
}

/// The reading side: the file's path and the writer's announcements.
#[derive(Debug, Clone)]
pub struct GrowingFile {
    pub path: PathBuf,
    progress: watch::Receiver<Progress>,
}

/// A writer and a reader for the file at `path`, which the caller writes.
pub fn growing(path: PathBuf) -> (Writer, GrowingFile) {
    let (sender, progress) = watch::channel(Progress::default());
    (Writer(sender), GrowingFile { path, progress })
}

/// At most this much is read per chunk of the body.
const CHUNK_BYTES: u64 = 256 * 1024;

impl GrowingFile {
    /// The file's bytes in order, as the writer announces them; `sent` counts what was handed
    /// on. The stream ends when the writer finishes and fails if it gives up.
    pub(crate) async fn bytes(
        &self,
        sent: Arc<AtomicU64>,
    ) -> io::Result<impl Stream<Item = io::Result<Bytes>> + Send + 'static> {
        let file = tokio::fs::File::open(&self.path).await?;
        let reading = Reading {
            file,
            progress: self.progress.clone(),
            position: 0,
            failed: false,
            sent,
        };
        Ok(futures_util::stream::unfold(reading, Reading::next))
    }
}

struct Reading {
    file: tokio::fs::File,
    progress: watch::Receiver<Progress>,
    position: u64,
    failed: bool,
    sent: Arc<AtomicU64>,
}

impl Reading {
    async fn next(mut self) -> Option<(io::Result<Bytes>, Reading)> {
        if self.failed {
            return None;
        }
        loop {
            let now = *self.progress.borrow_and_update();
            if self.position < now.written {
                let len = (now.written - self.position).min(CHUNK_BYTES);
                let mut chunk = vec![0; len as usize];
                if let Err(error) = self.file.read_exact(&mut chunk).await {
                    self.failed = true;
                    return Some((Err(error), self));
                }
                self.position += len;
                self.sent.fetch_add(len, Ordering::Relaxed);
                return Some((Ok(Bytes::from(chunk)), self));
            }
            if now.finished {
                return None;
            }
            if self.progress.changed().await.is_err() {
                self.failed = true;
                let error = io::Error::other("the layer stopped being written");
                return Some((Err(error), self));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::time::Duration;

    use futures_util::StreamExt as _;

    use super::*;

    async fn collect(file: &GrowingFile) -> (io::Result<Vec<u8>>, u64) {
        let sent = Arc::new(AtomicU64::new(0));
        let mut stream = Box::pin(file.bytes(sent.clone()).await.unwrap());
        let mut all = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => all.extend_from_slice(&chunk),
                Err(error) => return (Err(error), sent.load(Ordering::Relaxed)),
            }
        }
        (Ok(all), sent.load(Ordering::Relaxed))
    }

    #[tokio::test]
    async fn the_reader_follows_the_writer_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer");
        let mut out = std::fs::File::create(&path).unwrap();
        let (writer, file) = growing(path);
        let expected: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let written = expected.clone();
        let thread = std::thread::spawn(move || {
            for (index, piece) in written.chunks(100_000).enumerate() {
                out.write_all(piece).unwrap();
                writer.wrote(((index + 1) * 100_000).min(700_000) as u64);
                std::thread::sleep(Duration::from_millis(5));
            }
            writer.finish(700_000);
        });
        let (read, sent) = collect(&file).await;
        thread.join().unwrap();
        assert_eq!(read.unwrap(), expected);
        assert_eq!(sent, 700_000);
    }

    #[tokio::test]
    async fn a_writer_that_gives_up_fails_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer");
        std::fs::write(&path, b"partial").unwrap();
        let (writer, file) = growing(path);
        writer.wrote(7);
        drop(writer);
        let (read, sent) = collect(&file).await;
        assert_eq!(
            read.unwrap_err().to_string(),
            "the layer stopped being written"
        );
        assert_eq!(sent, 7, "what was announced was still sent");
    }
}
