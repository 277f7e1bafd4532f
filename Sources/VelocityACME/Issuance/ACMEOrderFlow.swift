import Foundation

/// One certificate for one name from one CA (RFC 8555 §7.4): a new order, each authorization answered with a
/// challenge of `type`, polled until valid, then finalized with a CSR and the chain downloaded.
struct ACMEOrderFlow {
    let client: ACMEClient
    let responder: ACMEChallengeResponder
    let settings: ACMEIssuerSettings
    /// How long one authorization or order may stay pending or processing.
    var pollingLimit: TimeInterval = 120

    /// `replacing`: the ARI certificate ID of the certificate this one renews.
    func obtain(
        _ name: String, with type: ChallengeType, replacing: String? = nil
    ) async throws(ACMEError) -> IssuedCertificate {
        let (orderURL, order) = try await client.newOrder(for: [name], replacing: replacing)
        for authorization in order.authorizations {
            try await authorize(authorization, with: type)
        }
        let ready = try await poll(orderURL, until: [.ready, .valid])
        let key: CertificateKey
        do {
            key = try CertificateKey(settings.keyType)
        } catch {
            throw .invalid("no \(settings.keyType.rawValue) key could be made: \(error)")
        }
        var finished = ready
        if ready.status == .ready {
            let csr: [UInt8]
            do {
                csr = try key.signingRequest(for: [name])
            } catch {
                throw .invalid("the certificate request for \(name) could not be built: \(error)")
            }
            finished = try await client.finalize(ready.finalize, csr: csr)
            if finished.status != .valid { finished = try await poll(orderURL, until: [.valid]) }
        }
        guard let certificateURL = finished.certificate else {
            throw .malformed("a valid order without a certificate URL", url: orderURL)
        }
        let chain = try await client.certificateChain(certificateURL)
        do {
            return try IssuedCertificate(
                chainPEM: chain, privateKeyPEM: key.privateKeyPEM, issuer: settings.directoryURL)
        } catch {
            throw .malformed("the certificate does not parse", url: certificateURL)
        }
    }

    private func authorize(_ url: String, with type: ChallengeType) async throws(ACMEError) {
        let (authorization, _) = try await client.authorization(url)
        switch authorization.status {
        case .valid: return
        case .pending: break
        default: throw .invalid("the authorization for \(authorization.identifier.value) is \(authorization.status)")
        }
        let name = authorization.identifier.value
        guard let challenge = authorization.challenges.first(where: { $0.type == type.rawValue }),
            let token = challenge.token, KeyAuthorization.isToken(token)
        else { throw .noChallenge("\(settings.directoryURL) offers no \(type.rawValue) challenge for \(name)") }
        do {
            try responder.provision(
                type, name: name, token: token,
                keyAuthorization: KeyAuthorization.make(token: token, accountKey: client.jwk))
        } catch {
            throw .invalid("the \(type.rawValue) answer for \(name) could not be stored: \(error)")
        }
        defer { responder.remove(type, name: name, token: token) }
        try await client.respond(to: challenge.url)
        let started = Date()
        var delay: TimeInterval = 0.25
        while true {
            let (current, retryAfter) = try await client.authorization(url)
            switch current.status {
            case .valid:
                return
            case .pending:
                break
            default:
                let problem = current.challenges.first(where: { $0.type == type.rawValue })?.error
                throw .invalid(
                    "\(type.rawValue) for \(name) failed: "
                        + (problem.map { "\($0)" } ?? "authorization \(current.status)"))
            }
            delay = try await wait(retryAfter ?? delay, since: started, for: "the authorization of \(name)")
        }
    }

    /// Polls an order until it reaches one of `wanted`; an invalid order fails with the CA's reason.
    private func poll(_ url: String, until wanted: Set<ACMEOrder.Status>) async throws(ACMEError) -> ACMEOrder {
        let started = Date()
        var delay: TimeInterval = 0.25
        while true {
            let (order, retryAfter) = try await client.order(url)
            if wanted.contains(order.status) { return order }
            if order.status == .invalid {
                throw .invalid("the order was refused: " + (order.error.map { "\($0)" } ?? "status invalid"))
            }
            delay = try await wait(retryAfter ?? delay, since: started, for: "the order \(url)")
        }
    }

    /// Sleeps as the CA asked (at most 10 s a time), or doubles the last wait; gives up past the limit.
    private func wait(_ delay: TimeInterval, since started: Date, for what: String) async throws(ACMEError)
        -> TimeInterval
    {
        guard Date().timeIntervalSince(started) < pollingLimit else {
            throw .timedOut("\(what) was still pending after \(Int(pollingLimit)) s")
        }
        let bounded = min(max(delay, 0.1), 10)
        do {
            try await Task.sleep(for: .seconds(bounded))
        } catch {
            throw .timedOut("\(what): stopped")
        }
        return min(bounded * 2, 5)
    }
}
