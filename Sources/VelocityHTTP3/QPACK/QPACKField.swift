/// One field line of a header or trailer section, in the order it was sent.
struct QPACKField: Equatable, Hashable, Sendable {
    var name: String
    var value: String
    /// The 'N' bit (RFC 9204 §4.5.4): the value must stay a literal on every hop, never enter a dynamic
    /// table. Set by the decoder when the peer sent it; the encoder also forces it for known secrets.
    var neverIndex: Bool

    init(name: String, value: String, neverIndex: Bool = false) {
        self.name = name
        self.value = value
        self.neverIndex = neverIndex
    }

    /// What the field counts against the dynamic table and SETTINGS_MAX_FIELD_SECTION_SIZE: the lengths in
    /// bytes before Huffman coding, plus 32 for the overhead of keeping it.
    var size: Int { name.utf8.count + value.utf8.count + 32 }
}

/// A name and value as a dictionary key, for the encoder's lookups in both tables.
struct FieldKey: Hashable, Sendable {
    var name: String
    var value: String
}
