"""CRUD, lifecycle metadata, selectors, pagination and errors over plain HTTP."""

from __future__ import annotations

from api_helpers import configmap, deployment


def test_create_get_update_delete_configmap(api, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/api/v1/namespaces/{ns}/configmaps"
    code, created, _ = api.post(base, configmap("one", ns))
    assert code == 201
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and int(meta["resourceVersion"]) > 0
    assert "generation" not in meta
    code, got, _ = api.get(f"{base}/one")
    assert code == 200 and got["data"] == {"k": "v"}
    got["data"]["k"] = "w"
    code, updated, _ = api.put(f"{base}/one", got)
    assert code == 200
    assert int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert updated["metadata"]["uid"] == meta["uid"]
    # a write with the old resourceVersion is a conflict
    got["data"]["k"] = "x"
    code, status, _ = api.put(f"{base}/one", got)
    assert code == 409 and status["kind"] == "Status" and status["reason"] == "Conflict"
    code, status, _ = api.delete(f"{base}/one")
    assert code == 200 and status["status"] == "Success"
    code, status, _ = api.get(f"{base}/one")
    assert code == 404 and status["reason"] == "NotFound" and status["message"] == 'configmaps "one" not found'


def test_create_twice_is_already_exists_and_generate_name_works(api, sandbox_namespace):
    base = f"/api/v1/namespaces/{sandbox_namespace}/configmaps"
    assert api.post(base, configmap("dup", sandbox_namespace))[0] == 201
    code, status, _ = api.post(base, configmap("dup", sandbox_namespace))
    assert code == 409 and status["reason"] == "AlreadyExists"
    body = configmap("", sandbox_namespace)
    body["metadata"] = {"generateName": "gen-"}
    code, created, _ = api.post(base, body)
    assert code == 201 and created["metadata"]["name"].startswith("gen-") and len(created["metadata"]["name"]) == 9


def _put_fresh(api, path, change, *, status_path=False):
    """Read-modify-write with retries: the workload simulation writes status concurrently."""
    for _ in range(20):
        _, live, _ = api.get(path)
        change(live)
        code, written, _ = api.put(path + ("/status" if status_path else ""), live)
        if code != 409:
            return code, written
    raise AssertionError(f"could not write {path}")


def test_generation_moves_only_with_spec(api, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    code, created, _ = api.post(base, deployment("web", ns))
    assert code == 201 and created["metadata"]["generation"] == 1
    assert created["spec"]["strategy"]["type"] == "RollingUpdate"  # upstream defaults
    code, relabelled = _put_fresh(api, f"{base}/web", lambda o: o["metadata"]["labels"].update(extra="yes"))
    assert code == 200 and relabelled["metadata"]["generation"] == 1
    code, scaled = _put_fresh(api, f"{base}/web", lambda o: o["spec"].update(replicas=3))
    assert scaled["metadata"]["generation"] == 2
    # status is only written through /status, and does not move generation
    marker = {"observedGeneration": 77, "replicas": 3}
    code, after_main = _put_fresh(api, f"{base}/web", lambda o: o.update(status=marker))
    assert code == 200 and after_main.get("status") != marker
    code, after_status = _put_fresh(api, f"{base}/web", lambda o: o.update(status=marker), status_path=True)
    assert code == 200 and after_status["status"] == marker
    assert after_status["metadata"]["generation"] == 2


def test_scale_subresource(api, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    api.post(base, deployment("sc", ns, replicas=2))
    code, scale, _ = api.get(f"{base}/sc/scale")
    assert code == 200 and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    assert scale["status"]["selector"] == "app=sc"
    scale["spec"]["replicas"] = 5
    code, scale, _ = api.put(f"{base}/sc/scale", scale)
    assert code == 200 and scale["spec"]["replicas"] == 5
    assert api.get(f"{base}/sc")[1]["spec"]["replicas"] == 5


def test_validation_errors_name_fields(api, sandbox_namespace):
    ns = sandbox_namespace
    body = deployment("bad", ns)
    body["spec"]["replicas"] = "three"
    del body["spec"]["selector"]
    code, status, _ = api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", body)
    assert code == 422 and status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert {"spec.replicas", "spec.selector"} <= fields
    assert status["message"].startswith('Deployment.apps "bad" is invalid')
    body = configmap("Bad_Name", ns)
    code, status, _ = api.post(f"/api/v1/namespaces/{ns}/configmaps", body)
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.name"


def test_field_validation_modes(api, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/api/v1/namespaces/{ns}/configmaps"
    body = configmap("fv", ns)
    body["bogus"] = 1
    code, status, _ = api.post(base, body, params={"fieldValidation": "Strict"})
    assert code == 400 and 'unknown field "bogus"' in status["message"]
    code, created, headers = api.post(base, body, params={"fieldValidation": "Warn"})
    assert code == 201 and "bogus" not in created
    assert 'unknown field \\"bogus\\"' in headers["Warning"]
    body["metadata"]["name"] = "fv2"
    code, created, headers = api.post(base, body, params={"fieldValidation": "Ignore"})
    assert code == 201 and "Warning" not in headers and "bogus" not in created


def test_dry_run_never_persists(api, sandbox_namespace):
    base = f"/api/v1/namespaces/{sandbox_namespace}/configmaps"
    code, created, _ = api.post(base, configmap("dry", sandbox_namespace), params={"dryRun": "All"})
    assert code == 201 and created["metadata"]["name"] == "dry"
    assert api.get(f"{base}/dry")[0] == 404
    api.post(base, configmap("real", sandbox_namespace))
    assert api.delete(f"{base}/real", params={"dryRun": "All"})[0] == 200
    assert api.get(f"{base}/real")[0] == 200


def test_label_field_selectors_and_pagination(api, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(7):
        api.post(base, configmap(f"cm{i}", ns, labels={"tier": "a" if i % 2 else "b", "n": str(i)}))
    _, listed, _ = api.get(base, params={"labelSelector": "tier=a"})
    assert [o["metadata"]["name"] for o in listed["items"]] == ["cm1", "cm3", "cm5"]
    _, listed, _ = api.get(base, params={"labelSelector": "tier in (a,b),n notin (0,1)"})
    assert len(listed["items"]) == 5
    _, listed, _ = api.get(base, params={"fieldSelector": "metadata.name=cm4"})
    assert [o["metadata"]["name"] for o in listed["items"]] == ["cm4"]
    code, status, _ = api.get(base, params={"fieldSelector": "data.k=v"})
    assert code == 400 and "field label not supported" in status["message"]
    names, token = [], None
    while True:
        params = {"limit": 3, **({"continue": token} if token else {})}
        _, page, _ = api.get(base, params=params)
        names += [o["metadata"]["name"] for o in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert names == [f"cm{i}" for i in range(7)]


def test_delete_preconditions_and_collection(api, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/api/v1/namespaces/{ns}/configmaps"
    _, created, _ = api.post(base, configmap("pre", ns, labels={"g": "x"}))
    api.post(base, configmap("pre2", ns, labels={"g": "x"}))
    api.post(base, configmap("keep", ns))
    code, status, _ = api.delete(f"{base}/pre", {"preconditions": {"uid": "not-the-uid"}})
    assert code == 409 and "Precondition failed" in status["message"]
    code, _, _ = api.delete(
        f"{base}/pre", {"preconditions": {"uid": created["metadata"]["uid"]}, "propagationPolicy": "Background"}
    )
    assert code == 200
    code, deleted, _ = api.delete(base, params={"labelSelector": "g=x"})
    assert code == 200 and [o["metadata"]["name"] for o in deleted["items"]] == ["pre2"]
    _, listed, _ = api.get(base)
    assert [o["metadata"]["name"] for o in listed["items"]] == ["keep"]


def test_finalizers_hold_deletion_until_removed(api, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/api/v1/namespaces/{ns}/configmaps"
    body = configmap("fin", ns)
    body["metadata"]["finalizers"] = ["example.com/hold"]
    api.post(base, body)
    code, held, _ = api.delete(f"{base}/fin")
    assert code == 202 and held["metadata"]["deletionTimestamp"]
    code, held, _ = api.get(f"{base}/fin")
    assert code == 200 and held["metadata"]["deletionTimestamp"]
    held["metadata"]["finalizers"] = []
    assert api.put(f"{base}/fin", held)[0] == 200
    assert api.get(f"{base}/fin")[0] == 404


def test_malformed_bodies_get_status_objects(api, sandbox_namespace):
    base = f"/api/v1/namespaces/{sandbox_namespace}/configmaps"
    for raw in (b"{", b"[]", b"null", b'{"metadata": 5}', b"\xff\xfe", b""):
        code, status, _ = api.call("POST", base, raw=raw)
        assert 400 <= code < 500, raw
        assert status["kind"] == "Status" and status["status"] == "Failure", raw
    code, status, _ = api.get("/apis/nope.example.com/v1/things")
    assert code == 404 and status["kind"] == "Status"


def test_resource_versions_are_global_and_monotonic(api, sandbox_namespace):
    ns = sandbox_namespace
    rvs = []
    for i in range(3):
        _, created, _ = api.post(f"/api/v1/namespaces/{ns}/configmaps", configmap(f"rv{i}", ns))
        rvs.append(int(created["metadata"]["resourceVersion"]))
        _, created, _ = api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment(f"rv{i}", ns))
        rvs.append(int(created["metadata"]["resourceVersion"]))
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)


def test_list_resource_version_semantics(api, sandbox_namespace):
    base = f"/api/v1/namespaces/{sandbox_namespace}/configmaps"
    _, listed, _ = api.get(base)
    rv = int(listed["metadata"]["resourceVersion"])
    assert api.get(base, params={"resourceVersion": str(rv), "resourceVersionMatch": "NotOlderThan"})[0] == 200
    code, status, _ = api.get(base, params={"resourceVersion": str(rv + 1000)})
    assert code == 504 and status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    code, status, _ = api.get(base, params={"resourceVersionMatch": "NotOlderThan"})
    assert code == 400 and status["kind"] == "Status"


def test_duplicate_fields_follow_field_validation(api, sandbox_namespace):
    base = f"/api/v1/namespaces/{sandbox_namespace}/configmaps"
    raw = b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup"}, "data": {"a": "1", "a": "2"}}'
    code, status, _ = api.call("POST", base, raw=raw, params={"fieldValidation": "Strict"})
    assert code == 400 and 'duplicate field "a"' in status["message"]
    code, created, headers = api.call("POST", base, raw=raw, params={"fieldValidation": "Warn"})
    assert code == 201 and created["data"] == {"a": "2"} and 'duplicate field \\"a\\"' in headers["Warning"]
