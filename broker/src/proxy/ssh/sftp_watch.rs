//! Watches an `sftp` subsystem's byte streams and lists the file operations
//! in them (paths, and bytes written to or read from each opened file) for
//! the recording index. It only reads: the bytes are relayed unchanged
//! whatever it makes of them.
//!
//! Packets are framed by their 4-byte length and decoded with `russh-sftp`'s
//! protocol types. Requests (client → target) give the paths; the target's
//! `HANDLE` answers tie handles to the files they opened, so later `WRITE`
//! requests and `DATA` answers add to the right file's byte counts. Memory is
//! bounded: one packet per direction (at most [`MAX_PACKET`]) and at most
//! [`MAX_OPS`] recorded operations. A stream it cannot follow (an oversized
//! or undecodable frame) stops the watching, never the transfer.

use std::collections::HashMap;

use bytes::Bytes;
use russh_sftp::protocol::{OpenFlags, Packet};
use serde::{Deserialize, Serialize};

/// Largest packet followed (OpenSSH sends at most 256 KiB of data per packet).
pub const MAX_PACKET: usize = 1 << 20;
/// Operations recorded per channel at most (later ones are only counted).
pub const MAX_OPS: usize = 10_000;

/// One file operation, as the recording index shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SftpOp {
    /// `read`, `write` (an open for writing), `remove`, `rename`, `mkdir`,
    /// `rmdir`, `opendir`, `setstat`, `symlink`.
    pub op: String,
    /// The path as the client named it.
    pub path: String,
    /// The second path of `rename` and `symlink`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Bytes the client wrote to this file.
    #[serde(default)]
    pub bytes_written: u64,
    /// Bytes the client read from this file.
    #[serde(default)]
    pub bytes_read: u64,
}

/// Splits one direction's bytes into SFTP packets.
#[derive(Debug, Default)]
struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Appends `data` and hands every complete packet (type byte onwards) to
    /// `f`. `false` when the stream announced an oversized packet.
    fn feed(&mut self, data: &[u8], mut f: impl FnMut(Bytes)) -> bool {
        self.buf.extend_from_slice(data);
        loop {
            let Some(len) = self
                .buf
                .get(..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(|b| u32::from_be_bytes(b) as usize)
            else {
                return true;
            };
            if len > MAX_PACKET {
                self.buf = Vec::new();
                return false;
            }
            let Some(packet) = self.buf.get(4..4 + len) else {
                return true;
            };
            f(Bytes::copy_from_slice(packet));
            self.buf.drain(..4 + len);
        }
    }
}

/// The watcher of one sftp channel.
#[derive(Debug, Default)]
pub struct SftpWatch {
    up: Framer,
    down: Framer,
    /// OPEN request id → index of its op.
    opening: HashMap<u32, usize>,
    /// Open handle → index of its op.
    handles: HashMap<String, usize>,
    /// READ request id → index of its op.
    reading: HashMap<u32, usize>,
    ops: Vec<SftpOp>,
    /// Operations beyond [`MAX_OPS`].
    dropped: u64,
    /// The stream could not be followed; nothing more is recorded.
    lost: bool,
}

impl SftpWatch {
    /// Bytes from the client to the target.
    pub fn client_data(&mut self, data: &[u8]) {
        if self.lost {
            return;
        }
        let mut packets = Vec::new();
        if !self.up.feed(data, |p| packets.push(p)) {
            self.lost = true;
        }
        for mut p in packets {
            match Packet::try_from(&mut p) {
                Ok(packet) => self.request(packet),
                Err(e) => tracing::debug!("sftp request not understood: {e}"),
            }
        }
    }

    /// Bytes from the target to the client.
    pub fn target_data(&mut self, data: &[u8]) {
        if self.lost {
            return;
        }
        let mut packets = Vec::new();
        if !self.down.feed(data, |p| packets.push(p)) {
            self.lost = true;
        }
        for mut p in packets {
            match Packet::try_from(&mut p) {
                Ok(Packet::Handle(h)) => {
                    if let Some(op) = self.opening.remove(&h.id) {
                        self.handles.insert(h.handle, op);
                    }
                }
                Ok(Packet::Data(d)) => {
                    if let Some(op) = self.reading.remove(&d.id).and_then(|i| self.ops.get_mut(i)) {
                        op.bytes_read += d.data.len() as u64;
                    }
                }
                Ok(Packet::Status(s)) => {
                    // A failed OPEN or READ: its id is not coming back.
                    self.opening.remove(&s.id);
                    self.reading.remove(&s.id);
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("sftp answer not understood: {e}"),
            }
        }
    }

    /// What was recorded, and how many operations did not fit.
    pub fn ops(&self) -> (&[SftpOp], u64) {
        (&self.ops, self.dropped)
    }

    fn push(&mut self, op: &str, path: String, to: Option<String>) -> Option<usize> {
        if self.ops.len() >= MAX_OPS {
            self.dropped += 1;
            return None;
        }
        self.ops.push(SftpOp {
            op: op.to_owned(),
            path,
            to,
            bytes_written: 0,
            bytes_read: 0,
        });
        Some(self.ops.len() - 1)
    }

    fn request(&mut self, packet: Packet) {
        match packet {
            Packet::Open(o) => {
                let writes = o
                    .pflags
                    .intersects(OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE);
                let op = if writes { "write" } else { "read" };
                if let Some(i) = self.push(op, o.filename, None) {
                    self.opening.insert(o.id, i);
                }
            }
            Packet::Write(w) => {
                if let Some(op) = self
                    .handles
                    .get(&w.handle)
                    .and_then(|&i| self.ops.get_mut(i))
                {
                    op.bytes_written += w.data.len() as u64;
                }
            }
            Packet::Read(r) => {
                if let Some(&i) = self.handles.get(&r.handle) {
                    self.reading.insert(r.id, i);
                }
            }
            Packet::Close(c) => {
                self.handles.remove(&c.handle);
            }
            Packet::Remove(r) => {
                self.push("remove", r.filename, None);
            }
            Packet::Rename(r) => {
                self.push("rename", r.oldpath, Some(r.newpath));
            }
            Packet::MkDir(m) => {
                self.push("mkdir", m.path, None);
            }
            Packet::RmDir(r) => {
                self.push("rmdir", r.path, None);
            }
            Packet::OpenDir(o) => {
                self.push("opendir", o.path, None);
            }
            Packet::SetStat(s) => {
                self.push("setstat", s.path, None);
            }
            Packet::Symlink(s) => {
                self.push("symlink", s.linkpath, Some(s.targetpath));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh_sftp::protocol::{Close, Data, FileAttributes, Handle, Open, Read, Remove, Write};

    fn wire(p: Packet) -> Vec<u8> {
        Bytes::try_from(p).unwrap().to_vec()
    }

    #[test]
    fn follows_an_upload_a_download_and_a_remove_split_at_any_byte() {
        let mut up = Vec::new();
        let mut down = Vec::new();
        up.extend(wire(Packet::Open(Open {
            id: 1,
            filename: "/tmp/up.bin".into(),
            pflags: OpenFlags::WRITE | OpenFlags::CREATE,
            attrs: FileAttributes::default(),
        })));
        down.extend(wire(Packet::Handle(Handle {
            id: 1,
            handle: "h1".into(),
        })));
        let mut writes = Vec::new();
        for (id, n) in [(2u32, 1000usize), (3, 234)] {
            writes.extend(wire(Packet::Write(Write {
                id,
                handle: "h1".into(),
                offset: 0,
                data: vec![7; n],
            })));
        }
        writes.extend(wire(Packet::Close(Close {
            id: 4,
            handle: "h1".into(),
        })));
        writes.extend(wire(Packet::Open(Open {
            id: 5,
            filename: "/etc/hostname".into(),
            pflags: OpenFlags::READ,
            attrs: FileAttributes::default(),
        })));
        let mut w = SftpWatch::default();
        // Byte by byte: framing must not depend on chunk boundaries.
        for b in &up {
            w.client_data(std::slice::from_ref(b));
        }
        w.target_data(&down);
        for chunk in writes.chunks(7) {
            w.client_data(chunk);
        }
        w.target_data(&wire(Packet::Handle(Handle {
            id: 5,
            handle: "h2".into(),
        })));
        w.client_data(&wire(Packet::Read(Read {
            id: 6,
            handle: "h2".into(),
            offset: 0,
            len: 4096,
        })));
        w.target_data(&wire(Packet::Data(Data {
            id: 6,
            data: vec![1; 9],
        })));
        w.client_data(&wire(Packet::Remove(Remove {
            id: 7,
            filename: "/tmp/old".into(),
        })));
        let (ops, dropped) = w.ops();
        assert_eq!(dropped, 0);
        assert_eq!(ops.len(), 3, "{ops:?}");
        assert_eq!(
            (
                ops[0].op.as_str(),
                ops[0].path.as_str(),
                ops[0].bytes_written
            ),
            ("write", "/tmp/up.bin", 1234)
        );
        assert_eq!(
            (ops[1].op.as_str(), ops[1].path.as_str(), ops[1].bytes_read),
            ("read", "/etc/hostname", 9)
        );
        assert_eq!(
            (ops[2].op.as_str(), ops[2].path.as_str()),
            ("remove", "/tmp/old")
        );
    }

    #[test]
    fn garbage_and_oversized_frames_stop_watching_without_panicking() {
        let mut w = SftpWatch::default();
        w.client_data(&[0, 0, 0, 3, 250, 1, 2]); // unknown packet type
        w.client_data(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        w.client_data(&wire(Packet::Remove(Remove {
            id: 1,
            filename: "/x".into(),
        })));
        assert!(w.ops().0.is_empty(), "nothing recorded once lost");
    }
}
