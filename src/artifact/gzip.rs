//! Parallel, reproducible gzip (artifact.md#layer, issue 11 point 2).
//!
//! The stream is cut into blocks of [`BLOCK_SIZE`] bytes, and each block is deflated on its own —
//! a fresh compressor, no dictionary carried over — so blocks compress on every core at once and
//! each block's bytes depend on nothing but its content. Every block but the last ends with a
//! sync flush (an empty stored block, which byte-aligns the output without ending the stream),
//! the last with the final block, so the concatenation is one ordinary deflate stream inside one
//! ordinary gzip member: any gzip reader (Go's `compress/gzip` in Flux and Argo CD, `gzip -d`)
//! takes it. This is pigz's `--independent` mode.
//!
//! The output is a function of the input bytes alone: not of the core count, the scheduling or
//! how the caller splits its writes. The block size, the level and the deflate implementation
//! (zlib-rs, pinned by `Cargo.lock`) are part of every layer digest.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Uncompressed bytes per independently deflated block: pigz's default block size. Smaller
/// blocks spread a small artifact over more cores but compress worse (each starts without a
/// dictionary); at 128 KiB a YAML tree loses about 1% against one stream.
pub const BLOCK_SIZE: usize = 128 * 1024;
/// The deflate level.
pub const LEVEL: u32 = 6;
/// Blocks shorter than this are always deflated: too few bytes to judge a histogram by.
const MIN_STORE_CHECK: usize = 16 * 1024;
/// gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS "unknown" — so the bytes
/// do not depend on the packing machine or the time.
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];

/// A block handed to a worker, and where its deflated bytes go.
struct Job {
    input: Vec<u8>,
    last: bool,
    done: SyncSender<io::Result<Vec<u8>>>,
}

/// The worker threads, started at the first full block (a stream of one block is compressed on
/// the writing thread and starts none).
struct Pool {
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(threads: usize) -> io::Result<Pool> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut workers = Vec::with_capacity(threads);
        for index in 0..threads {
            let queue = Arc::clone(&queue);
            let worker = std::thread::Builder::new()
                .name(format!("ksail-deflate-{index}"))
                .spawn(move || work(&queue))?;
            workers.push(worker);
        }
        Ok(Pool {
            jobs: Some(jobs),
            workers,
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends every worker once it is idle.
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        // Hold the lock only to take a job, never while compressing.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // The writer may have gone (an error elsewhere); then nobody wants the result.
        let _ = job.done.send(deflate_block(&job.input, job.last));
    }
}

/// Whether a block looks like bytes deflate cannot shrink (compressed, encrypted or random data):
/// every byte value occurs between half and one and a half times as often as in uniform data.
/// Such a block is stored, not searched for matches it does not have — that search is most of
/// the cost of packing a tree with binary files (performance.md). Integer arithmetic only, so
/// the choice, and with it the layer digest, is the same on every machine. (Data with a uniform
/// histogram that still repeats itself, such as one random kilobyte many times, is stored too:
/// a loss of ratio, never of bytes.)
fn looks_incompressible(input: &[u8]) -> bool {
    if input.len() < MIN_STORE_CHECK {
        return false;
    }
    let mut counts = [0u32; 256];
    for &byte in input {
        counts[usize::from(byte)] += 1;
    }
    let total = input.len() as u64;
    counts.iter().all(|&count| {
        let scaled = u64::from(count) * 512;
        scaled >= total && scaled <= 3 * total
    })
}

/// Deflate one block with a fresh compressor: ending in a sync flush, or in the final block
/// when `last`. A block that [looks incompressible](looks_incompressible) is stored.
pub fn deflate_block(input: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let level = match looks_incompressible(input) {
        true => Compression::none(),
        false => Compression::new(LEVEL),
    };
    let mut compressor = Compress::new(level, false);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // Deflate never grows data by more than a few bytes per 16 KiB stored block.
    let mut output = Vec::with_capacity(input.len() + input.len() / 1024 + 64);
    loop {
        if output.capacity() - output.len() < 64 {
            output.reserve(output.capacity().max(4096));
        }
        let consumed = compressor.total_in() as usize;
        let status = compressor
            .compress_vec(&input[consumed..], &mut output, flush)
            .map_err(io::Error::other)?;
        let all_in = compressor.total_in() as usize == input.len();
        // A flush is complete when the compressor returned with output space left over.
        let flushed = output.len() < output.capacity();
        match (status, last) {
            (Status::StreamEnd, true) => return Ok(output),
            (_, false) if all_in && flushed => return Ok(output),
            _ => {}
        }
    }
}

/// A [`Write`] that gzips into `inner`, blocks compressed in parallel and written in order.
pub struct ParallelGzWriter<W: Write> {
    inner: W,
    threads: usize,
    block: Vec<u8>,
    crc: Crc,
    pool: Option<Pool>,
    /// Blocks being compressed, oldest first; at most `2 × threads`, which bounds memory.
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
}

impl<W: Write> ParallelGzWriter<W> {
    /// A writer that compresses on `threads` cores (at least one).
    pub fn new(mut inner: W, threads: usize) -> io::Result<Self> {
        inner.write_all(&HEADER)?;
        Ok(ParallelGzWriter {
            inner,
            threads: threads.max(1),
            block: Vec::with_capacity(BLOCK_SIZE),
            crc: Crc::new(),
            pool: None,
            pending: VecDeque::new(),
        })
    }

    /// A writer that compresses on every core this process may use.
    pub fn on_all_cores(inner: W) -> io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(inner, cores)
    }

    /// Compress what is left, write the gzip trailer and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let last = std::mem::take(&mut self.block);
        if self.pool.is_some() {
            self.submit(last, true)?;
            while let Some(done) = self.pending.pop_front() {
                write_result(&mut self.inner, &done)?;
            }
        } else {
            // One block: no thread is worth starting.
            self.inner.write_all(&deflate_block(&last, true)?)?;
        }
        self.inner.write_all(&self.crc.sum().to_le_bytes())?;
        // ISIZE is the input length modulo 2^32 (RFC 1952).
        self.inner.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.inner)
    }

    fn submit(&mut self, input: Vec<u8>, last: bool) -> io::Result<()> {
        if self.pool.is_none() {
            self.pool = Some(Pool::start(self.threads)?);
        }
        let jobs = self.pool.as_ref().and_then(|pool| pool.jobs.as_ref());
        let (done, result) = sync_channel(1);
        jobs.ok_or_else(|| io::Error::other("the deflate workers stopped"))?
            .send(Job { input, last, done })
            .map_err(|_| io::Error::other("the deflate workers stopped"))?;
        self.pending.push_back(result);
        while self.pending.len() > 2 * self.threads {
            if let Some(done) = self.pending.pop_front() {
                write_result(&mut self.inner, &done)?;
            }
        }
        Ok(())
    }
}

fn write_result(out: &mut impl Write, done: &Receiver<io::Result<Vec<u8>>>) -> io::Result<()> {
    let bytes = done
        .recv()
        .map_err(|_| io::Error::other("a deflate worker stopped"))??;
    out.write_all(&bytes)
}

impl<W: Write> Write for ParallelGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = BLOCK_SIZE - self.block.len();
        let taken = &buf[..buf.len().min(room)];
        self.block.extend_from_slice(taken);
        self.crc.update(taken);
        if self.block.len() == BLOCK_SIZE {
            let full = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
            self.submit(full, false)?;
        }
        Ok(taken.len())
    }

    /// Blocks are written once compressed; a partial block waits for more input or `finish`.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut writer = ParallelGzWriter::new(Vec::new(), threads).unwrap();
        for piece in data.chunks(chunk.max(1)) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Text-like data that compresses, with a varying part so blocks differ.
    fn sample(len: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(len);
        let mut n = 0u64;
        while data.len() < len {
            data.extend_from_slice(format!("key-{n}: value {}\n", n * 7919 % 1000).as_bytes());
            n += 1;
        }
        data.truncate(len);
        data
    }

    #[test]
    fn round_trips_at_every_block_boundary() {
        for len in [
            0,
            1,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            3 * BLOCK_SIZE,
            5 * BLOCK_SIZE + 17,
        ] {
            let data = sample(len);
            assert_eq!(gunzip(&gzip(&data, 3, 7000)), data, "length {len}");
        }
    }

    #[test]
    fn output_does_not_depend_on_cores_or_write_sizes() {
        let data = sample(7 * BLOCK_SIZE + 1234);
        let reference = gzip(&data, 1, data.len());
        for (threads, chunk) in [
            (1, 1000),
            (2, 4096),
            (4, 512),
            (8, BLOCK_SIZE),
            (16, 99_999),
        ] {
            assert_eq!(gzip(&data, threads, chunk), reference, "{threads} threads");
        }
    }

    #[test]
    fn the_header_and_trailer_are_fixed_fields() {
        let data = sample(2 * BLOCK_SIZE + 5);
        let bytes = gzip(&data, 2, 4096);
        assert_eq!(bytes[..10], HEADER);
        let trailer = &bytes[bytes.len() - 8..];
        let mut crc = Crc::new();
        crc.update(&data);
        assert_eq!(trailer[..4], crc.sum().to_le_bytes());
        assert_eq!(trailer[4..], (data.len() as u32).to_le_bytes());
    }

    /// Each block is deflated alone: a block's bytes are the same wherever it stands in the
    /// stream, which is what lets the blocks compress in parallel.
    #[test]
    fn blocks_are_independent() {
        let block = sample(BLOCK_SIZE);
        let mut twice = block.clone();
        twice.extend_from_slice(&block);
        let bytes = gzip(&twice, 2, 4096);
        let one = deflate_block(&block, false).unwrap();
        assert_eq!(bytes[10..10 + one.len()], one[..]);
        assert_eq!(bytes[10 + one.len()..10 + 2 * one.len()], one[..]);
    }

    /// xorshift bytes: what deflate cannot shrink.
    fn noise(len: usize, mut state: u64) -> Vec<u8> {
        let mut data = Vec::with_capacity(len + 8);
        while data.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(&state.to_le_bytes());
        }
        data.truncate(len);
        data
    }

    #[test]
    fn incompressible_blocks_are_stored_and_text_is_deflated() {
        let random = noise(BLOCK_SIZE, 0x9e37_79b9_7f4a_7c15);
        assert!(looks_incompressible(&random));
        let stored = deflate_block(&random, false).unwrap();
        // Stored blocks of at most 65,535 bytes, 5 bytes of header each, plus the sync flush.
        assert!(stored.len() <= random.len() + 3 * 5 + 5, "{}", stored.len());
        let text = sample(BLOCK_SIZE);
        assert!(!looks_incompressible(&text));
        assert!(deflate_block(&text, false).unwrap().len() < text.len() / 2);
        assert!(
            !looks_incompressible(&random[..MIN_STORE_CHECK - 1]),
            "too short to judge"
        );
        let mut mixed = text.clone();
        mixed.extend_from_slice(&random);
        mixed.extend_from_slice(&text[..777]);
        assert_eq!(gunzip(&gzip(&mixed, 2, 5000)), mixed);
        assert_eq!(gzip(&mixed, 1, mixed.len()), gzip(&mixed, 3, 4096));
    }

    #[test]
    fn the_system_gzip_reads_it() {
        let mut data = sample(3 * BLOCK_SIZE + 11);
        data.extend_from_slice(&noise(BLOCK_SIZE, 7));
        let mut child = std::process::Command::new("gzip")
            .args(["-d", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip is installed");
        let bytes = gzip(&data, 2, 4096);
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&bytes));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, data);
    }
}
