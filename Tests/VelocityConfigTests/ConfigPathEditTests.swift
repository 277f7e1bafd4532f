import Testing
import VelocityConfig

@Suite struct ConfigPathEditTests {
    let document: JSONValue = ["sites": [["hosts": ["a.test"]]], "admin": ["listen": "127.0.0.1:2019"]]

    private func pointer(_ tokens: String...) -> JSONPointer { JSONPointer(tokens: tokens) }

    private func kind(_ body: () throws -> JSONValue) -> JSONEditError.Kind? {
        do {
            _ = try body()
            return nil
        } catch {
            return (error as? JSONEditError)?.kind
        }
    }

    @Test func postCreatesOrReplacesObjectMembers() throws {
        let replaced = try document.applying(.post("0.0.0.0:1", splice: false), at: pointer("admin", "listen"))
        #expect(replaced.value(at: pointer("admin", "listen")) == "0.0.0.0:1")
        let created = try document.applying(.post(["level": "debug"], splice: false), at: pointer("logging"))
        #expect(created.value(at: pointer("logging", "level")) == "debug")
    }

    @Test func postAppendsToArraysAndSplicesWithDots() throws {
        let appended = try document.applying(.post("b.test", splice: false), at: pointer("sites", "0", "hosts"))
        #expect(appended.value(at: pointer("sites", "0", "hosts")) == ["a.test", "b.test"])
        let spliced = try document.applying(
            .post(["b.test", "c.test"], splice: true), at: pointer("sites", "0", "hosts"))
        #expect(spliced.value(at: pointer("sites", "0", "hosts")) == ["a.test", "b.test", "c.test"])
        #expect(
            kind { try document.applying(.post("x", splice: true), at: pointer("sites", "0", "hosts")) } == .invalid)
    }

    @Test func postToAnArrayIndexIsRefused() {
        #expect(
            kind { try document.applying(.post("x", splice: false), at: pointer("sites", "0", "hosts", "0")) }
                == .invalid)
    }

    @Test func putCreatesOnlyAndInsertsAtIndexes() throws {
        #expect(kind { try document.applying(.put("x"), at: pointer("admin", "listen")) } == .conflict)
        let inserted = try document.applying(.put("z.test"), at: pointer("sites", "0", "hosts", "0"))
        #expect(inserted.value(at: pointer("sites", "0", "hosts")) == ["z.test", "a.test"])
        #expect(kind { try document.applying(.put("x"), at: pointer("sites", "0", "hosts", "5")) } == .invalid)
    }

    @Test func patchReplacesOnly() throws {
        #expect(kind { try document.applying(.patch("x"), at: pointer("logging")) } == .notFound)
        let patched = try document.applying(.patch("b.test"), at: pointer("sites", "0", "hosts", "0"))
        #expect(patched.value(at: pointer("sites", "0", "hosts")) == ["b.test"])
    }

    @Test func deleteRemovesExistingValues() throws {
        let removed = try document.applying(.delete, at: pointer("sites", "0"))
        #expect(removed.value(at: pointer("sites")) == [])
        #expect(kind { try document.applying(.delete, at: pointer("tls")) } == .notFound)
        #expect(try document.applying(.delete, at: .root) == .object([:]))
    }

    @Test func missingParentsAreNotFound() {
        #expect(
            kind { try document.applying(.post("x", splice: false), at: pointer("tls", "certificates")) } == .notFound)
    }
}

@Suite struct JSONPatchTests {
    @Test func appliesEveryRFC6902Operation() throws {
        let document: JSONValue = ["a": ["b": 1], "list": [1, 2]]
        let patch = try JSONValue(
            parsing: """
                [{"op": "add", "path": "/list/1", "value": 9},
                 {"op": "add", "path": "/list/-", "value": 3},
                 {"op": "remove", "path": "/list/0"},
                 {"op": "replace", "path": "/a/b", "value": 2},
                 {"op": "copy", "from": "/a", "path": "/c"},
                 {"op": "move", "from": "/c/b", "path": "/d"},
                 {"op": "test", "path": "/d", "value": 2.0}]
                """)
        #expect(
            try document.applyingJSONPatch(patch) == ["a": ["b": 2], "c": .object([:]), "d": 2, "list": [9, 2, 3]])
    }

    @Test func failsWholeWhenOneOperationFails() throws {
        let document: JSONValue = ["a": 1]
        let patch = try JSONValue(
            parsing: #"[{"op": "replace", "path": "/a", "value": 2}, {"op": "test", "path": "/a", "value": 3}]"#)
        #expect(throws: JSONEditError.self) { try document.applyingJSONPatch(patch) }
        let moveIntoChild = try JSONValue(parsing: #"[{"op": "move", "from": "/a", "path": "/a/b"}]"#)
        #expect(throws: JSONEditError.self) { try document.applyingJSONPatch(moveIntoChild) }
    }

    @Test func mergesAsRFC7396Says() throws {
        let target = try JSONValue(parsing: #"{"a": "b", "c": {"d": "e", "f": "g"}}"#)
        let patch = try JSONValue(parsing: #"{"a": "z", "c": {"f": null}}"#)
        #expect(target.applyingMergePatch(patch) == ["a": "z", "c": ["d": "e"]])
        #expect(JSONValue.array([1]).applyingMergePatch(["a": ["b": .null]]) == ["a": .object([:])])
    }
}
