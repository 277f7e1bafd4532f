import HTTPTypes
import NIOCore
import Testing
import VelocityConfig

@testable import VelocityHTTP

@Suite struct FileServerPartsTests {
    @Test func requestPathsDecodeAndNeverClimbAboveTheRoot() throws {
        #expect(RequestPath("/a/b.txt")?.segments == ["a", "b.txt"])
        #expect(RequestPath("/a/%20b")?.segments == ["a", " b"])
        #expect(RequestPath("/../../etc/passwd")?.segments == ["etc", "passwd"])
        #expect(RequestPath("/a/./b/../c")?.segments == ["a", "c"])
        #expect(RequestPath("/%2e%2e/%2E%2E/etc")?.segments == ["etc"])
        #expect(RequestPath("/")?.relative == ".")
        #expect(RequestPath("/docs/")?.trailingSlash == true)
        #expect(RequestPath("/docs")?.trailingSlash == false)
        // Encoded separators, NUL, broken escapes and invalid UTF-8 name no file.
        #expect(RequestPath("/a%2f..%2f..%2fetc") == nil)
        #expect(RequestPath("/a%5cb") == nil)
        #expect(RequestPath("/a%00b") == nil)
        #expect(RequestPath("/a%zz") == nil)
        #expect(RequestPath("/a%2") == nil)
        #expect(RequestPath("/%ff") == nil)
    }

    @Test func byteRangesFollowRFC9110() {
        #expect(ByteRange("bytes=0-99", size: 1000) == .range(first: 0, last: 99))
        #expect(ByteRange("bytes=900-2000", size: 1000) == .range(first: 900, last: 999))
        #expect(ByteRange("bytes=500-", size: 1000) == .range(first: 500, last: 999))
        #expect(ByteRange("bytes=-100", size: 1000) == .range(first: 900, last: 999))
        #expect(ByteRange("bytes=-5000", size: 1000) == .range(first: 0, last: 999))
        #expect(ByteRange("bytes=1000-", size: 1000) == .unsatisfiable)
        #expect(ByteRange("bytes=-0", size: 1000) == .unsatisfiable)
        #expect(ByteRange("bytes=0-0", size: 0) == .unsatisfiable)
        // Several ranges, other units and nonsense are answered with the whole file.
        #expect(ByteRange("bytes=0-1,5-6", size: 1000) == .whole)
        #expect(ByteRange("items=0-1", size: 1000) == .whole)
        #expect(ByteRange("bytes=5-1", size: 1000) == .whole)
        #expect(ByteRange("bytes=x-", size: 1000) == .whole)
        #expect(ByteRange(nil, size: 1000) == .whole)
    }

    @Test func httpDatesRoundTrip() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("garbage") == nil)
    }

    @Test func acceptEncodingHonoursQualitiesAndOrder() {
        #expect(AcceptEncoding.preferred([.br, .gzip], in: "gzip, deflate, br") == .br)
        #expect(AcceptEncoding.preferred([.gzip, .br], in: "gzip, deflate, br") == .gzip)
        #expect(AcceptEncoding.preferred([.br, .gzip], in: "br;q=0.5, gzip") == .gzip)
        #expect(AcceptEncoding.preferred([.br, .gzip], in: "br;q=0, gzip;q=0") == nil)
        #expect(AcceptEncoding.preferred([.br, .gzip], in: "*;q=0.1, br;q=0") == .gzip)
        #expect(AcceptEncoding.preferred([.br], in: "identity") == nil)
        #expect(AcceptEncoding.preferred([.gzip], in: "GZIP;Q=1.0") == .gzip)
    }

    @Test func encodeRuleChoosesCompressibleResponses() throws {
        let rule = EncodeRule(try decode(EncodeConfig.self, #"{"minimum_length": 10}"#))
        let request: HTTPFields = [.acceptEncoding: "gzip, br"]
        func choice(_ type: String, length: Int = 100, status: HTTPResponse.Status = .ok, extra: HTTPFields = [:])
            -> ContentEncoding?
        {
            var response = extra
            response[.contentType] = type
            return rule.encoding(request: request, status: status, response: response, length: length)
        }
        #expect(choice("text/html; charset=utf-8") == .br)
        #expect(choice("application/ld+json") == .br)
        #expect(choice("image/svg+xml") == .br)
        #expect(choice("image/png") == nil)
        #expect(choice("text/plain", length: 9) == nil)
        #expect(choice("text/plain", status: .partialContent) == nil)
        #expect(choice("text/plain", status: .notModified) == nil)
        #expect(choice("text/plain", extra: [.contentEncoding: "gzip"]) == nil)
        #expect(rule.encoding(request: [:], status: .ok, response: [.contentType: "text/plain"], length: 100) == nil)
    }

    @Test func hidePatternsMatchWholeNames() {
        #expect(NamePattern("*.bak").matches("a.bak"))
        #expect(!NamePattern("*.bak").matches("a.bak.txt"))
        #expect(NamePattern("secret*").matches("secrets.txt"))
        #expect(NamePattern("exact").matches("exact"))
        #expect(!NamePattern("exact").matches("exactly"))
        #expect(!NamePattern("ab*ba").matches("aba"))
    }

    @Test func compressedBodiesAreWellFormed() {
        let text = String(repeating: "velocity edge server ", count: 500)
        for encoding in [ContentEncoding.gzip, .br] {
            let compressor = Compressor(encoding)
            var output = ByteBuffer()
            compressor.compress(ByteBuffer(string: String(text.prefix(5000))), into: &output)
            compressor.compress(ByteBuffer(string: String(text.dropFirst(5000))), into: &output, finish: true)
            #expect(output.readableBytes > 0)
            #expect(output.readableBytes < text.utf8.count / 10)
            if encoding == .gzip { #expect(output.readableBytesView.prefix(2).elementsEqual([0x1f, 0x8b])) }
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try StrictDecoder.decode(T.self, from: try JSONValue(parsing: text))
    }
}
