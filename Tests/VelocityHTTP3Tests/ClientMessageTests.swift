import NIOHTTP1
import Testing

@testable import VelocityHTTP3

/// The client's side of the field translation: requests out, responses in, malformed responses refused.
@Suite struct ClientMessageTests {
    @Test func requestFieldsStartWithThePseudoHeaders() {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/upload?x=1")
        head.headers.add(name: "Host", value: "example.com:8443")
        head.headers.add(name: "Content-Type", value: "text/plain")
        head.headers.add(name: "Connection", value: "keep-alive")
        let fields = HTTP3Message.requestFields(head, scheme: "https")
        #expect(
            fields == [
                QPACKField(name: ":method", value: "POST"), QPACKField(name: ":scheme", value: "https"),
                QPACKField(name: ":authority", value: "example.com:8443"),
                QPACKField(name: ":path", value: "/upload?x=1"),
                QPACKField(name: "content-type", value: "text/plain"),
            ])
    }

    @Test func responseHeadTakesStatusAndFields() throws {
        let (head, length) = try HTTP3Message.responseHead([
            QPACKField(name: ":status", value: "206"), QPACKField(name: "content-length", value: "12"),
            QPACKField(name: "etag", value: "\"x\""),
        ])
        #expect(head.status == .partialContent && head.version.major == 3)
        #expect(head.headers["etag"] == ["\"x\""] && length == 12)
    }

    @Test(arguments: [
        [QPACKField(name: "etag", value: "x")],
        [QPACKField(name: ":status", value: "200"), QPACKField(name: ":status", value: "200")],
        [QPACKField(name: "etag", value: "x"), QPACKField(name: ":status", value: "200")],
        [QPACKField(name: ":status", value: "20")],
        [QPACKField(name: ":status", value: "200"), QPACKField(name: ":path", value: "/")],
        [QPACKField(name: ":status", value: "200"), QPACKField(name: "Etag", value: "x")],
        [QPACKField(name: ":status", value: "200"), QPACKField(name: "transfer-encoding", value: "chunked")],
        [QPACKField(name: ":status", value: "200"), QPACKField(name: "content-length", value: "x")],
    ])
    func malformedResponsesAreMessageErrors(fields: [QPACKField]) {
        #expect(throws: HTTP3Error.self) { try HTTP3Message.responseHead(fields) }
    }
}
