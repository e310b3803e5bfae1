//! XPRESS Huffman ([MS-XCA] section 2.2.4) for the records of the compressed container.
//! The encoder uses one fixed, complete code table and only two kinds of symbols:
//! literals, and distance-1 matches for runs of a repeated byte. That is valid XPRESS
//! Huffman and fast on the mostly repetitive pages the simulator writes, but it
//! compresses much less than SQL Server does. The decoder reads any valid stream, with a
//! table lookup per symbol and bulk copies for matches.

use std::sync::OnceLock;

/// Symbols: 256 literals, then match symbols (256 + 16 * distance bit length + length
/// nibble). Symbol 256 doubles as the end-of-stream marker.
const SYMBOLS: usize = 512;
const END_OF_STREAM: usize = 256;
/// The format's largest output per code table; records stay below it.
pub(crate) const MAX_INPUT: usize = 65_536;
/// Shortest run worth a match: a match symbol costs 11 bits, a literal 8 or 9.
const MIN_MATCH: usize = 4;
/// Literal values given 9-bit codes so the table is complete (see `code_lengths`).
const LONG_LITERALS: [u8; 4] = [0xFB, 0xFC, 0xFD, 0xFE];

struct CodeTable {
    codes: [u16; SYMBOLS],
    lengths: [u8; SYMBOLS],
    /// The 256-byte table of 4-bit lengths that starts each block: the low nibble of byte
    /// i is symbol 2i, the high nibble symbol 2i+1.
    packed: [u8; 256],
}

/// Code lengths of the fixed table: 252 literals at 8 bits, 4 literals at 9 bits and the
/// 16 distance-1 match symbols (256..=271) at 11 bits. The Kraft sum is
/// 252/256 + 4/512 + 16/2048 = 1, so the code is complete, which decoders require.
fn code_lengths() -> [u8; SYMBOLS] {
    let mut lengths = [0u8; SYMBOLS];
    lengths[..256].fill(8);
    for literal in LONG_LITERALS {
        lengths[usize::from(literal)] = 9;
    }
    lengths[256..272].fill(11);
    lengths
}

/// Assigns canonical codes: by increasing length, then by increasing symbol ([MS-XCA]).
fn canonical_codes(lengths: &[u8; SYMBOLS]) -> [u16; SYMBOLS] {
    let mut codes = [0u16; SYMBOLS];
    let mut next_code: u32 = 0;
    for length in 1..=15u8 {
        for symbol in 0..SYMBOLS {
            if lengths[symbol] == length {
                codes[symbol] = next_code as u16;
                next_code += 1;
            }
        }
        next_code <<= 1;
    }
    codes
}

fn code_table() -> &'static CodeTable {
    static TABLE: OnceLock<CodeTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let lengths = code_lengths();
        let codes = canonical_codes(&lengths);
        let mut packed = [0u8; 256];
        for (i, byte) in packed.iter_mut().enumerate() {
            *byte = lengths[2 * i] | (lengths[2 * i + 1] << 4);
        }
        CodeTable {
            codes,
            lengths,
            packed,
        }
    })
}

/// Writes the bit stream as [MS-XCA] lays it out: 16-bit little-endian words filled from
/// the most significant bit, with the extra length bytes of long matches placed between
/// words. The decoder preloads two words and loads the next one as soon as it starts on a
/// new word, so the writer keeps two word slots reserved ahead of the byte output.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    bits: u32,
    count: u32,
    next_slot: usize,
    following_slot: usize,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        let next_slot = out.len();
        out.extend_from_slice(&[0; 4]);
        BitWriter {
            out,
            bits: 0,
            count: 0,
            next_slot,
            following_slot: next_slot + 2,
        }
    }

    fn put_bits(&mut self, code: u16, length: u8) {
        self.bits = (self.bits << length) | u32::from(code);
        self.count += u32::from(length);
        if self.count > 16 {
            self.count -= 16;
            let word = (self.bits >> self.count) as u16;
            self.out[self.next_slot..self.next_slot + 2].copy_from_slice(&word.to_le_bytes());
            self.next_slot = self.following_slot;
            self.following_slot = self.out.len();
            self.out.extend_from_slice(&[0, 0]);
            self.bits &= (1 << self.count) - 1;
        }
    }

    fn put_symbol(&mut self, table: &CodeTable, symbol: usize) {
        self.put_bits(table.codes[symbol], table.lengths[symbol]);
    }

    /// Writes a match of `length` bytes at distance 1 (the previous byte repeated).
    fn put_run(&mut self, table: &CodeTable, length: usize) {
        let nibble = (length - 3).min(15);
        self.put_symbol(table, END_OF_STREAM + nibble);
        if nibble == 15 {
            let rest = length - 3 - 15;
            if rest < 255 {
                self.out.push(rest as u8);
            } else {
                self.out.push(255);
                let full = u16::try_from(length - 3).expect("runs are shorter than 64 KiB");
                self.out.extend_from_slice(&full.to_le_bytes());
            }
        }
        // Distance 1 has a distance bit length of 0, so no distance bits follow.
    }

    fn finish(self) {
        if self.count > 0 {
            let word = (self.bits << (16 - self.count)) as u16;
            self.out[self.next_slot..self.next_slot + 2].copy_from_slice(&word.to_le_bytes());
        }
    }
}

/// Number of bytes at the start of `bytes` equal to `value`.
fn run_length(bytes: &[u8], value: u8) -> usize {
    let pattern = u64::from_ne_bytes([value; 8]);
    let mut count = 0;
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let word = u64::from_ne_bytes(chunk.try_into().expect("8 bytes"));
        if word != pattern {
            break;
        }
        count += 8;
    }
    count + bytes[count..].iter().take_while(|&&b| b == value).count()
}

/// Compresses `input` (at most 64 KiB) into one XPRESS Huffman block ending with the
/// end-of-stream symbol, replacing the contents of `out`.
pub(crate) fn compress(input: &[u8], out: &mut Vec<u8>) {
    assert!(
        input.len() <= MAX_INPUT,
        "XPRESS Huffman block input exceeds 64 KiB"
    );
    let table = code_table();
    out.clear();
    out.reserve(input.len() + input.len() / 8 + 512);
    out.extend_from_slice(&table.packed);
    let mut writer = BitWriter::new(out);
    let mut i = 0;
    while i < input.len() {
        let value = input[i];
        writer.put_symbol(table, usize::from(value));
        i += 1;
        let run = run_length(&input[i..], value);
        if run >= MIN_MATCH {
            writer.put_run(table, run);
            i += run;
        }
    }
    writer.put_symbol(table, END_OF_STREAM);
    writer.finish();
}

/// Maximum code length of the format, which is also the width of the decoder's lookup
/// index.
const MAX_CODE_LENGTH: u32 = 15;

/// Builds the decoder's lookup table: for every 15-bit prefix, the symbol whose code
/// starts it and that code's length (0 where no code matches, in incomplete tables).
fn build_decode_table(packed: &[u8], table: &mut Vec<(u16, u8)>) -> Result<(), String> {
    let mut lengths = [0u8; SYMBOLS];
    for (i, byte) in packed.iter().enumerate() {
        lengths[2 * i] = byte & 0x0F;
        lengths[2 * i + 1] = byte >> 4;
    }
    table.clear();
    table.resize(1 << MAX_CODE_LENGTH, (0, 0));
    let mut next_code: u32 = 0;
    for length in 1..=MAX_CODE_LENGTH as u8 {
        for (symbol, &symbol_length) in lengths.iter().enumerate() {
            if symbol_length != length {
                continue;
            }
            let shift = MAX_CODE_LENGTH - u32::from(length);
            let first = (next_code << shift) as usize;
            let last = ((next_code + 1) << shift) as usize;
            if last > table.len() {
                return Err("Huffman code lengths over-subscribe the code space".to_string());
            }
            table[first..last].fill((symbol as u16, length));
            next_code += 1;
        }
        next_code <<= 1;
    }
    Ok(())
}

/// Bit reader of [MS-XCA]: two words preloaded, then one more each time a word is used up.
struct BitReader<'a> {
    input: &'a [u8],
    position: usize,
    bits: u32,
    extra: i32,
}

impl<'a> BitReader<'a> {
    /// Reads a 16-bit word, or zero past the end of the input. A stream may end on its
    /// end-of-stream symbol while the reader has already loaded words ahead.
    fn word(&mut self) -> u32 {
        let value = match self.input.get(self.position..self.position + 2) {
            Some(w) => u32::from(u16::from_le_bytes([w[0], w[1]])),
            None => 0,
        };
        self.position += 2;
        value
    }

    fn start(input: &'a [u8], position: usize) -> Self {
        let mut reader = BitReader {
            input,
            position,
            bits: 0,
            extra: 16,
        };
        let high = reader.word();
        let low = reader.word();
        reader.bits = (high << 16) | low;
        reader
    }

    fn consume(&mut self, count: u32) {
        if count == 0 {
            return;
        }
        self.bits <<= count;
        self.extra -= count as i32;
        if self.extra < 0 {
            let word = self.word();
            self.bits |= word << (-self.extra);
            self.extra += 16;
        }
    }

    fn byte(&mut self) -> Result<u8, String> {
        let value = *self
            .input
            .get(self.position)
            .ok_or("match length byte lies beyond the end of the record")?;
        self.position += 1;
        Ok(value)
    }

    fn raw_u16(&mut self) -> Result<u16, String> {
        let bytes = self
            .input
            .get(self.position..self.position + 2)
            .ok_or("match length word lies beyond the end of the record")?;
        self.position += 2;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }
}

/// Decodes a stream of XPRESS Huffman blocks into exactly `size` bytes, replacing the
/// contents of `output`. A new code table starts every 64 KiB of output ([MS-XCA]).
pub(crate) fn decompress(
    input: &[u8],
    size: usize,
    output: &mut Vec<u8>,
    table: &mut Vec<(u16, u8)>,
) -> Result<(), String> {
    output.clear();
    output.reserve(size);
    let mut position = 0;
    while output.len() < size {
        let packed = input
            .get(position..position + 256)
            .ok_or("code length table lies beyond the end of the record")?;
        build_decode_table(packed, table)?;
        let block_end = (output.len() + MAX_INPUT).min(size);
        let mut reader = BitReader::start(input, position + 256);
        decode_block(&mut reader, table, block_end, size, output)?;
        position = reader.position;
    }
    Ok(())
}

fn decode_block(
    reader: &mut BitReader<'_>,
    table: &[(u16, u8)],
    block_end: usize,
    size: usize,
    output: &mut Vec<u8>,
) -> Result<(), String> {
    while output.len() < block_end {
        let (symbol, length) = table[(reader.bits >> (32 - MAX_CODE_LENGTH)) as usize];
        if length == 0 {
            return Err("bit pattern matches no Huffman code".to_string());
        }
        reader.consume(u32::from(length));
        if symbol < 256 {
            output.push(symbol as u8);
            continue;
        }
        let match_symbol = symbol - 256;
        let mut match_length = usize::from(match_symbol & 15);
        let distance_bits = u32::from(match_symbol >> 4);
        if match_length == 15 {
            let byte = reader.byte()?;
            match_length = if byte == 255 {
                let word = reader.raw_u16()?;
                if word < 15 {
                    return Err(format!("match length word {word} is below 15"));
                }
                usize::from(word) - 15
            } else {
                usize::from(byte)
            } + 15;
        }
        match_length += 3;
        let mut distance = 1usize << distance_bits;
        if distance_bits > 0 {
            distance += (reader.bits >> (32 - distance_bits)) as usize;
            reader.consume(distance_bits);
        }
        if distance > output.len() {
            return Err(format!(
                "match distance {distance} reaches before the start of the record"
            ));
        }
        // A match may run past the block end but never past the record's size.
        let match_length = match_length.min(size - output.len());
        copy_match(output, distance, match_length);
    }
    Ok(())
}

/// Appends `length` bytes copied from `distance` bytes back; the source may overlap the
/// bytes being written, which repeats the last `distance` bytes.
fn copy_match(output: &mut Vec<u8>, distance: usize, length: usize) {
    let start = output.len() - distance;
    if distance == 1 {
        let value = output[start];
        output.resize(output.len() + length, value);
    } else if distance >= length {
        output.extend_from_within(start..start + length);
    } else {
        let mut remaining = length;
        while remaining > 0 {
            let chunk = remaining.min(output.len() - start);
            output.extend_from_within(start..start + chunk);
            remaining -= chunk;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(compressed: &[u8], size: usize) -> Vec<u8> {
        let mut framed = (size as u32).to_le_bytes().to_vec();
        framed.extend_from_slice(compressed);
        compcol::vec::decompress_to_vec::<compcol::xpress_huffman::XpressHuffman>(&framed)
            .expect("compcol decodes the block")
    }

    fn round_trip(input: &[u8]) {
        let mut out = Vec::new();
        compress(input, &mut out);
        assert_eq!(decode(&out, input.len()), input, "compcol");
        let mut own = Vec::new();
        decompress(&out, input.len(), &mut own, &mut Vec::new()).unwrap();
        assert_eq!(own, input, "own decoder");
    }

    #[test]
    fn compress_round_trips_zeros() {
        round_trip(&vec![0u8; 65_024]);
        round_trip(&vec![0u8; 65_536]);
    }

    #[test]
    fn compress_round_trips_mixed_runs() {
        let mut input = Vec::new();
        for i in 0..4000usize {
            let value = (i * 37 % 256) as u8;
            input.extend(std::iter::repeat_n(value, i % 23));
        }
        input.truncate(65_024);
        round_trip(&input);
    }

    #[test]
    fn compress_round_trips_all_bytes() {
        let input: Vec<u8> = (0..65_024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        round_trip(&input);
        round_trip(&[0xFB, 0xFC, 0xFD, 0xFE, 0, 1]);
        round_trip(&[7]);
    }

    #[test]
    fn compress_round_trips_run_lengths() {
        for run in [3usize, 4, 17, 18, 19, 272, 273, 274, 1000] {
            let mut input = vec![1u8, 2];
            input.extend(std::iter::repeat_n(9u8, run));
            input.push(3);
            round_trip(&input);
        }
    }
}
