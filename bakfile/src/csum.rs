//! This crate's own payload checksum, stored in the `CSUM` stream after a data stream.
//! SQL Server's CSUM algorithm is not publicly documented (real files carry 4 bytes), so
//! real backups' CSUM values cannot be checked. Only streams in this crate's layout
//! (magic, then two 64-bit sums) are compared.

/// Marks a CSUM stream written by this crate.
const MAGIC: &[u8; 8] = b"BAKFILE1";
/// Length of this crate's CSUM stream data: magic, sum of words, sum of sums.
pub(crate) const CSUM_LEN: usize = 24;

/// A Fletcher-style checksum over little-endian u64 words: `a` sums the words and `b` sums
/// the running values of `a`, so any single changed byte and any swap of two different
/// words change the result. The byte length is folded in at the end so that trailing zero
/// bytes count.
#[derive(Debug, Clone, Default)]
pub(crate) struct PayloadChecksum {
    a: u64,
    b: u64,
    pending: [u8; 8],
    pending_len: usize,
    total_len: u64,
}

impl PayloadChecksum {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.total_len += bytes.len() as u64;
        if self.pending_len > 0 {
            let take = (8 - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < 8 {
                return;
            }
            let word = u64::from_le_bytes(self.pending);
            self.add_word(word);
            self.pending_len = 0;
        }
        let mut words = bytes.chunks_exact(8);
        let (mut a, mut b) = (self.a, self.b);
        for chunk in &mut words {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            a = a.wrapping_add(word);
            b = b.wrapping_add(a);
        }
        self.a = a;
        self.b = b;
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    fn add_word(&mut self, word: u64) {
        self.a = self.a.wrapping_add(word);
        self.b = self.b.wrapping_add(self.a);
    }

    /// Returns the CSUM stream data for everything passed to [`PayloadChecksum::update`].
    pub fn finish(&self) -> [u8; CSUM_LEN] {
        let mut copy = self.clone();
        if copy.pending_len > 0 {
            copy.pending[copy.pending_len..].fill(0);
            let word = u64::from_le_bytes(copy.pending);
            copy.add_word(word);
        }
        copy.add_word(copy.total_len);
        let mut out = [0u8; CSUM_LEN];
        out[0..8].copy_from_slice(MAGIC);
        out[8..16].copy_from_slice(&copy.a.to_le_bytes());
        out[16..24].copy_from_slice(&copy.b.to_le_bytes());
        out
    }
}

/// True when CSUM stream data has this crate's layout, so its value can be compared.
pub(crate) fn is_own_csum(data: &[u8]) -> bool {
    data.len() == CSUM_LEN && &data[0..8] == MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_ignores_chunking() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = PayloadChecksum::new();
        whole.update(&data);
        let mut pieces = PayloadChecksum::new();
        for chunk in data.chunks(13) {
            pieces.update(chunk);
        }
        assert_eq!(whole.finish(), pieces.finish());
    }

    #[test]
    fn checksum_detects_flipped_byte() {
        let data = vec![0u8; 4099];
        let mut clean = PayloadChecksum::new();
        clean.update(&data);
        for position in [0, 7, 8, 4098] {
            let mut damaged = data.clone();
            damaged[position] ^= 0x01;
            let mut checksum = PayloadChecksum::new();
            checksum.update(&damaged);
            assert_ne!(checksum.finish(), clean.finish(), "byte {position}");
        }
    }

    #[test]
    fn checksum_counts_trailing_zeros() {
        let mut short = PayloadChecksum::new();
        short.update(&[1, 2, 3]);
        let mut long = PayloadChecksum::new();
        long.update(&[1, 2, 3, 0]);
        assert_ne!(short.finish(), long.finish());
    }
}
