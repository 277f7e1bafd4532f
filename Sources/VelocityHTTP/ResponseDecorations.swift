import HTTPTypes

/// What the handlers before the answering one asked of the response: header edits, compression, and the
/// site's fields for HTTPS (`Strict-Transport-Security`, `Alt-Svc`).
public struct ResponseDecorations: Sendable {
    var headerEdits: [HeaderEdits] = []
    var httpsFields: HTTPFields?
    public internal(set) var encoding: EncodeRule?

    /// Adds the site's HTTPS fields and applies the edits in the order their handlers ran.
    public func decorate(_ fields: inout HTTPFields) {
        for field in httpsFields ?? [:] { fields[field.name] = field.value }
        for edit in headerEdits { edit.apply(to: &fields) }
    }

    /// A compiled response with the edits applied; one that carries the HTTPS fields already (compiled per
    /// site, all together) and that no edit touches is passed on as it is, without a copy.
    func decorated(_ response: StaticResponse) -> StaticResponse {
        let hasHTTPSFields = httpsFields?.first.map { response.headerFields[$0.name] != nil } ?? true
        guard !headerEdits.isEmpty || !hasHTTPSFields else {
            return response
        }
        var response = response
        decorate(&response.headerFields)
        return response
    }
}
