"""The gateway stage reads the upload route's shape from OpenAPI, whichever way it is built."""

import pytest

from bench.stages.gateway import ROUTE, RouteMissing, UploadRoute, upload_route


def _spec(*, query=(), form_store=False, field="file", binary=True):
    file_schema = {"type": "string", "format": "binary"} if binary else {"type": "string"}
    properties = {field: {"anyOf": [file_schema, {"type": "null"}]}}
    if form_store:
        properties["store"] = {"type": "boolean"}
    return {
        "paths": {
            ROUTE: {
                "post": {
                    "parameters": [{"name": name, "in": "query"} for name in query],
                    "requestBody": {
                        "content": {
                            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/Form"}}
                        }
                    },
                }
            }
        },
        "components": {"schemas": {"Form": {"properties": properties}}},
    }


def test_store_as_a_query_parameter_is_sent_once():
    route = upload_route(_spec(query=("store", "confidence"), form_store=True))
    assert route == UploadRoute(field="file", params={"store": "false"})


def test_store_as_a_form_field():
    assert upload_route(_spec(form_store=True, field="image")) == UploadRoute(
        field="image", form={"store": "false"}
    )


def test_no_store_parameter_means_the_default():
    assert upload_route(_spec()) == UploadRoute(field="file")


def test_missing_route_or_file_field():
    with pytest.raises(RouteMissing):
        upload_route({"paths": {}})
    with pytest.raises(RouteMissing):
        upload_route(_spec(binary=False))
