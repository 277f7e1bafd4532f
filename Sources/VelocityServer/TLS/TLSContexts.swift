import VelocityConfig
import VelocityTLS

/// The TLS context for each snapshot: the previous one while the config's handshake settings stay the same,
/// a new one when they change. The ticket keys belong to no context, so tickets issued under an earlier
/// context still resume after a change. Used only by the ``ConfigCoordinator``, one change at a time.
final class TLSContexts {
    private let tickets = TicketKeyRing(rotation: .seconds(SessionTicketsConfig.defaultRotationSeconds))
    private var latest: TLSServerContext?

    func context(for config: VelocityConfig) throws(ConfigError) -> TLSServerContext {
        let groups = config.tls?.groups ?? KeyExchangeGroup.defaults
        let issuesTickets = config.tls?.sessionTickets?.enabled ?? true
        if let latest, latest.groups == groups, latest.issuesTickets == issuesTickets { return latest }
        do {
            let context = try TLSServerContext(groups: groups, tickets: issuesTickets ? tickets : nil)
            latest = context
            return context
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
