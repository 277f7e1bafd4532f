import Foundation
import NIOHTTP1
import Testing

@testable import VelocityACME

@Suite struct ProblemTests {
    @Test func aProblemWithSubproblemsReadsAsOneLine() throws {
        let json = """
            {"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "Some identifiers were rejected",
             "status": 400,
             "subproblems": [{"type": "urn:ietf:params:acme:error:malformed", "detail": "Invalid underscore in DNS name",
                              "identifier": {"type": "dns", "value": "_example.org"}}]}
            """
        let problem = try JSONDecoder().decode(ACMEProblem.self, from: Data(json.utf8))
        #expect(problem.acmeError == "rejectedIdentifier")
        #expect(problem.status == 400)
        #expect(
            problem.description
                == "Some identifiers were rejected (rejectedIdentifier); _example.org: Invalid underscore in DNS name")
        #expect(
            "\(ACMEError.problem(problem, url: "https://ca.test/new-order"))"
                == "https://ca.test/new-order: " + problem.description)
    }

    @Test func onlyBadNonceIsRetried() throws {
        let badNonce = ACMEProblem(
            type: "urn:ietf:params:acme:error:badNonce", detail: "JWS has an invalid anti-replay nonce")
        #expect(ACMEError.problem(badNonce, url: "u").isBadNonce)
        let other = ACMEProblem(type: "urn:ietf:params:acme:error:unauthorized", detail: "no")
        #expect(!ACMEError.problem(other, url: "u").isBadNonce)
        #expect(!ACMEError.status(400, url: "u").isBadNonce)
    }

    @Test func aProblemOfAnotherKindKeepsItsType() {
        let problem = ACMEProblem(type: "about:blank", detail: "Service busy")
        #expect(problem.acmeError == nil)
        #expect(problem.description == "Service busy (about:blank)")
    }

    @Test func retryAfterTakesSecondsOrADate() {
        var response = ACMEHTTPResponse(status: 200, headers: ["Retry-After": "7"], body: [])
        #expect(response.retryAfter == 7)
        let later = Date().addingTimeInterval(120)
        let format = DateFormatter()
        format.locale = Locale(identifier: "en_US_POSIX")
        format.timeZone = TimeZone(identifier: "GMT")
        format.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        response.headers = ["Retry-After": format.string(from: later)]
        #expect((115...121).contains(response.retryAfter ?? 0))
        response.headers = [:]
        #expect(response.retryAfter == nil)
    }
}
