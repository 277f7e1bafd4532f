import ArgumentParser
import VelocityConfig

/// `velocity certs`: what a running server's handshakes present, and where each ACME-managed name stands.
struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the certificates a running server presents and the state of ACME-managed names.")

    @OptionGroup var options: AdminOptions

    @Flag(help: "Print the admin API's JSON (GET /certificates) instead of a table.")
    var json = false

    func run() throws {
        let response = try options.client().send("GET", "/certificates")
        guard !json, response.status == 200, case .array(let list) = try JSONValue(parsing: response.body) else {
            return try report(response)
        }
        let rows = list.map { entry -> [String] in
            let names = entry["names"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ",") ?? ""
            let state = entry["managed"] == .bool(true) ? entry["state"]?.stringValue ?? "" : "-"
            let renewal = entry["renewal_at"]?.stringValue ?? ""
            let next = entry["next_attempt"]?.stringValue ?? ""
            return [
                names, state, entry["not_after"]?.stringValue ?? "-", renewal.isEmpty ? "-" : renewal,
                next.isEmpty ? "-" : next, entry["last_error"]?.stringValue ?? "",
            ]
        }
        let header = ["NAMES", "STATE", "NOT AFTER", "RENEWAL", "NEXT ATTEMPT", "LAST ERROR"]
        let widths = header.indices.dropLast().map { column in
            ([header] + rows).map { $0[column].count }.max()! + 2
        }
        for row in [header] + rows {
            print(
                zip(row.dropLast(), widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined()
                    + row.last!)
        }
    }
}
