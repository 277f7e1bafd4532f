import HTTPTypes

/// What the handlers before the answering one asked of the response: header edits, compression, and the
/// site's `Strict-Transport-Security` on HTTPS.
public struct ResponseDecorations: Sendable {
    var headerEdits: [HeaderEdits] = []
    var hsts: String?
    public internal(set) var encoding: EncodeRule?

    /// Adds HSTS and applies the edits in the order their handlers ran.
    public func decorate(_ fields: inout HTTPFields) {
        if let hsts { fields[.strictTransportSecurity] = hsts }
        for edit in headerEdits { edit.apply(to: &fields) }
    }

    /// A compiled response with the edits applied; one that carries HSTS already (compiled per site) and that
    /// no edit touches is passed on as it is, without a copy.
    func decorated(_ response: StaticResponse) -> StaticResponse {
        guard !headerEdits.isEmpty || (hsts != nil && response.headerFields[.strictTransportSecurity] == nil) else {
            return response
        }
        var response = response
        decorate(&response.headerFields)
        return response
    }
}
