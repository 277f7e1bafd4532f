import Testing
import VelocityConfig

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONValue(
            parsing: #"{"a": [1, -2.5, 1e3, true, false, null, "x\n\u00e9\ud83d\ude00"], "b": {}}"#)
        #expect(
            value == ["a": [1, -2.5, 1000.0, true, false, .null, "x\né😀"], "b": .object([:])])
    }

    @Test(arguments: [
        (#"{"a": tru}"#, 6),
        (#"{"a" 1}"#, 5),
        ("[1, 2", 5),
        (#"{"a": 1} x"#, 9),
        (#"{"a": 1, "a": 2}"#, 9),
        ("\"\u{01}\"", 1),
        ("01", 1),
        ("", 0),
    ])
    func reportsTheByteOffsetOfMalformedInput(text: String, offset: Int) {
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: text) }
        do {
            _ = try JSONValue(parsing: text)
        } catch {
            #expect(error.offset == offset, "\(text): \(error)")
        }
    }

    @Test func rejectsNestingBeyondTheLimit() {
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: deep) }
        #expect(throws: Never.self) { try JSONValue(parsing: deep.utf8, maxDepth: 300) }
    }

    @Test func rejectsInvalidUTF8AndLoneSurrogates() {
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: [0x22, 0xFF, 0x22]) }
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: #""\ud800x""#) }
    }

    @Test func keepsLargeIntegersExact() throws {
        #expect(try JSONValue(parsing: "9007199254740993") == .integer(9_007_199_254_740_993))
    }

    @Test func serializesCanonicallyWithSortedKeys() throws {
        let value = try JSONValue(parsing: #"{"b": 1, "a": ["\u0001", "q\"uote", 2.5]}"#)
        #expect(value.serialized() == #"{"a":["\u0001","q\"uote",2.5],"b":1}"#)
        #expect(try JSONValue(parsing: value.serialized(pretty: true)) == value)
    }
}

@Suite struct JSONPointerTests {
    @Test func escapesAndUnescapesTokens() throws {
        let pointer = try #require(JSONPointer("/a~1b/m~0n/~01"))
        #expect(pointer.tokens == ["a/b", "m~n", "~1"])
        #expect(pointer.description == "/a~1b/m~0n/~01")
        #expect(JSONPointer("") == .root)
        #expect(JSONPointer("no-slash") == nil)
    }

    @Test func findsValues() {
        let document: JSONValue = ["a": [["b": 1]]]
        #expect(document.value(at: JSONPointer(tokens: ["a", "0", "b"])) == 1)
        #expect(document.value(at: JSONPointer(tokens: ["a", "1"])) == nil)
        #expect(document.value(at: JSONPointer(tokens: ["a", "01"])) == nil)
    }
}
