import Foundation
import SwiftASN1
import Synchronization
import X509

/// Fetches and verifies the OCSP response of an issued certificate with swift-certificates'
/// ``OCSPVerifierPolicy`` (hard failure: the responder's signature or delegation, the times, the certificate
/// ID, and the status must all be right), asking the responder through Velocity's own HTTP client.
struct OCSPFetcher {
    let http: ACMEHTTPClient

    enum Outcome: Equatable {
        /// The certificate names no OCSP responder: nothing to staple.
        case noResponder
        case good(OCSPStaple)
        /// The response said revoked or unknown, or failed verification: never stapled.
        case refused(String)
        /// The responder could not be asked; try again later.
        case unavailable(String)
    }

    func fetch(chainPEM: String) async -> Outcome {
        let certificates: [Certificate]
        do {
            certificates = try PEMDocument.parseMultiple(pemString: chainPEM).map {
                try Certificate(derEncoded: $0.derBytes)
            }
        } catch {
            return .refused("the certificate chain does not parse")
        }
        guard let leaf = certificates.first,
            let responders = try? leaf.extensions.authorityInformationAccess,
            responders.contains(where: { $0.method == .ocspServer })
        else { return .noResponder }
        guard certificates.count > 1 else { return .refused("the chain holds no issuer to check the response with") }
        let requester = CapturingRequester(http: http)
        // RFC 5280's policy is there to understand the certificates' critical extensions; the chain is the
        // CA's own and needs no more checking than that.
        var verifier = Verifier(rootCertificates: CertificateStore([certificates[1]])) {
            RFC5280Policy()
            OCSPVerifierPolicy(failureMode: .hard, requester: requester)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
        guard case .validCertificate = result else {
            guard case .couldNotValidate(let failures) = result, !failures.isEmpty else {
                return .refused("the certificate does not chain to its issuer")
            }
            return .refused(failures.map { "\($0.policyFailureReason)" }.joined(separator: "; "))
        }
        // The policy also passes when the responder could not be reached: only a captured answer is stapled.
        guard let response = requester.response else { return .unavailable(requester.failure ?? "no response") }
        var serializer = DER.Serializer()
        do {
            try serializer.serialize(leaf)
            return .good(try OCSPStaple(response: response, leafDER: serializer.serializedBytes))
        } catch {
            return .refused("\(error)")
        }
    }
}

/// Sends the policy's request and keeps the responder's answer, which is what gets stapled.
private final class CapturingRequester: OCSPRequester {
    let http: ACMEHTTPClient
    private let captured = Mutex<(response: [UInt8]?, failure: String?)>((nil, nil))

    init(http: ACMEHTTPClient) {
        self.http = http
    }

    var response: [UInt8]? { captured.withLock { $0.response } }
    var failure: String? { captured.withLock { $0.failure } }

    func query(request: [UInt8], uri: String) async -> OCSPRequesterQueryResult {
        do {
            let answer = try await http.send(
                .POST, uri, body: request, contentType: "application/ocsp-request",
                accept: "application/ocsp-response", plainHTTPAllowed: true)
            guard answer.status == 200 else { throw ACMEError.status(answer.status, url: uri) }
            captured.withLock { $0.response = answer.body }
            return .response(answer.body)
        } catch {
            captured.withLock { $0.failure = "\(error)" }
            return .nonTerminalError(error)
        }
    }
}
