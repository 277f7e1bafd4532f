import NIOPosix
import Testing

@testable import VelocityACME

@Suite struct HTTPClientTests {
    @Test func anUnreachableCAIsATransportError() async throws {
        let client = try ACMEHTTPClient(group: MultiThreadedEventLoopGroup.singleton, trustedRootsPEM: nil)
        // Nothing listens on port 1 of loopback: the connection is refused at once.
        await #expect {
            try await client.send(.GET, "https://127.0.0.1:1/dir")
        } throws: { error in
            guard case .transport(_, let url) = error as? ACMEError else { return false }
            return url == "https://127.0.0.1:1/dir"
        }
    }

    @Test func onlyHTTPSURLsAreUsed() async throws {
        let client = try ACMEHTTPClient(group: MultiThreadedEventLoopGroup.singleton, trustedRootsPEM: nil)
        await #expect(throws: ACMEError.malformed("not an https URL", url: "http://ca.test/dir")) {
            try await client.send(.GET, "http://ca.test/dir")
        }
    }
}
