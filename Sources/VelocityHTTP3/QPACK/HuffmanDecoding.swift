extension Huffman {
    /// Decoding runs 4 bits at a time through a table built once from the code. A state is an inner node of
    /// the code tree (the bits read since the last symbol; 257 leaves make 256 inner nodes, so a state fits
    /// in a byte). Each of the 256 × 16 entries gives the next state and what happened on the way: a symbol
    /// emitted (at most one, as no code is shorter than 5 bits), EOS reached, or whether stopping there
    /// leaves valid padding. Entry layout: bits 0–7 next state, 8–15 symbol, then the three flags below.
    static let decodingTable: [UInt32] = buildDecodingTable()

    static let emitsSymbol: UInt32 = 1 << 16
    /// The bits since the last symbol are at most 7 ones: the string may end here (RFC 7541 §5.2).
    static let canEnd: UInt32 = 1 << 17
    /// EOS was decoded, which a string must not contain.
    static let reachesEOS: UInt32 = 1 << 18

    private static func buildDecodingTable() -> [UInt32] {
        // children[2 * node + bit]: an inner node's number, or -(symbol + 1) for a leaf; 0 while unset,
        // which is unambiguous because the root (node 0) is nobody's child.
        var children = [0, 0]
        for symbol in 0...endOfString {
            let code = codes[symbol]
            var node = 0
            for bit in (0..<Int(lengths[symbol])).reversed() {
                let slot = 2 * node + Int((code >> bit) & 1)
                if bit == 0 {
                    children[slot] = -(symbol + 1)
                } else {
                    if children[slot] == 0 {
                        children[slot] = children.count / 2
                        children += [0, 0]
                    }
                    node = children[slot]
                }
            }
        }
        let nodeCount = children.count / 2
        precondition(nodeCount == 256, "the RFC 7541 code has 256 inner nodes")

        // Padding is the first bits of EOS, all ones, and shorter than a byte: the root and the nodes up to
        // seven 1-bits below it are where a string may end.
        var endsValidly = [Bool](repeating: false, count: nodeCount)
        var onesPath = 0
        endsValidly[0] = true
        for _ in 1...7 {
            onesPath = children[2 * onesPath + 1]
            endsValidly[onesPath] = true
        }

        var table = [UInt32](repeating: 0, count: nodeCount * 16)
        for state in 0..<nodeCount {
            for nibble in 0..<16 {
                var node = state
                var entry: UInt32 = 0
                for bit in (0..<4).reversed() {
                    let next = children[2 * node + (nibble >> bit) & 1]
                    if next >= 0 {
                        node = next
                        continue
                    }
                    let symbol = -next - 1
                    if symbol == endOfString {
                        entry |= reachesEOS
                        break
                    }
                    precondition(entry & emitsSymbol == 0, "two symbols in one nibble")
                    entry |= emitsSymbol | UInt32(symbol) << 8
                    node = 0
                }
                entry |= UInt32(node)
                if endsValidly[node] { entry |= canEnd }
                table[state * 16 + nibble] = entry
            }
        }
        return table
    }

    /// The most bytes `encodedLength` bytes of Huffman code can decode to: no code is shorter than 5 bits.
    static func maxDecodedLength(_ encodedLength: Int) -> Int { encodedLength * 8 / 5 }

    /// Decodes `input` into `output`, which must have room for ``maxDecodedLength(_:)`` bytes, and returns
    /// how many it wrote. EOS in the string, padding of 8 bits or more, and padding that is not all ones
    /// are a QPACK_DECOMPRESSION_FAILED (RFC 7541 §5.2).
    static func decode(
        _ input: UnsafeRawBufferPointer,
        into output: UnsafeMutableBufferPointer<UInt8>
    ) throws(QPACKError) -> Int {
        try decodingTable.withUnsafeBufferPointer { table throws(QPACKError) in
            var state = 0
            var entry = canEnd
            var written = 0
            for byte in input {
                entry = table[state << 4 | Int(byte >> 4)]
                if entry & (emitsSymbol | reachesEOS) != 0 {
                    guard entry & reachesEOS == 0 else { throw .decompressionFailed("EOS in a Huffman string") }
                    output[written] = UInt8(truncatingIfNeeded: entry >> 8)
                    written += 1
                }
                state = Int(entry & 0xFF)
                entry = table[state << 4 | Int(byte & 0x0F)]
                if entry & (emitsSymbol | reachesEOS) != 0 {
                    guard entry & reachesEOS == 0 else { throw .decompressionFailed("EOS in a Huffman string") }
                    output[written] = UInt8(truncatingIfNeeded: entry >> 8)
                    written += 1
                }
                state = Int(entry & 0xFF)
            }
            guard entry & canEnd != 0 else { throw .decompressionFailed("invalid Huffman padding") }
            return written
        }
    }

    /// Decodes `input` as text; invalid UTF-8 is repaired, but the length returned is the decoded byte count.
    static func decodeString(_ input: UnsafeRawBufferPointer) throws(QPACKError) -> WireString {
        var failure: QPACKError?
        var length = 0
        let string = String(unsafeUninitializedCapacity: maxDecodedLength(input.count)) { output in
            do throws(QPACKError) {
                length = try decode(input, into: output)
            } catch {
                failure = error
            }
            return length
        }
        if let failure { throw failure }
        return WireString(string: string, length: length)
    }

    /// Decodes `input` to bytes, for tests and callers holding plain arrays.
    static func decode(_ input: [UInt8]) throws(QPACKError) -> [UInt8] {
        var failure: QPACKError?
        let bytes = [UInt8](unsafeUninitializedCapacity: maxDecodedLength(input.count)) { output, count in
            input.withUnsafeBytes { raw in
                do throws(QPACKError) {
                    count = try decode(raw, into: output)
                } catch {
                    failure = error
                    count = 0
                }
            }
        }
        if let failure { throw failure }
        return bytes
    }
}
