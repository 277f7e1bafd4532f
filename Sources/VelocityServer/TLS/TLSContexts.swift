import VelocityConfig
import VelocityHTTP3
import VelocityQUIC
import VelocityTLS

/// The TLS context for each snapshot: the previous one while the config's handshake settings stay the same,
/// a new one when they change. The ticket keys belong to no context, so tickets issued under an earlier
/// context still resume after a change. Used only by the ``ConfigCoordinator``, one change at a time.
final class TLSContexts {
    private let tickets = TicketKeyRing(rotation: .seconds(SessionTicketsConfig.defaultRotationSeconds))
    private var latest: (tcp: TLSServerContext, quic: TLSServerContext)?

    /// Contexts for TCP (ALPN h2, http/1.1) and QUIC (the QUIC applications' ALPN) with the same settings.
    func contexts(for config: VelocityConfig) throws(ConfigError) -> (tcp: TLSServerContext, quic: TLSServerContext) {
        let groups = config.tls?.groups ?? KeyExchangeGroup.defaults
        let issuesTickets = config.tls?.sessionTickets?.enabled ?? true
        if let latest, latest.tcp.groups == groups, latest.tcp.issuesTickets == issuesTickets { return latest }
        do {
            let tcp = try TLSServerContext(groups: groups, tickets: issuesTickets ? tickets : nil)
            let quic = try TLSServerContext(
                groups: groups, tickets: issuesTickets ? tickets : nil,
                alpn: [HTTP3ServerConnection.alpn, EchoApplication.alpn])
            latest = (tcp, quic)
            return (tcp, quic)
        } catch {
            throw ConfigError(at: JSONPointer(tokens: ["tls", "groups"]), error.description)
        }
    }

    /// Called once a config is live: its rotation period governs the next ticket.
    func applied(_ config: VelocityConfig) {
        let seconds = config.tls?.sessionTickets?.rotationSeconds ?? SessionTicketsConfig.defaultRotationSeconds
        tickets.setRotation(.seconds(seconds))
    }
}
