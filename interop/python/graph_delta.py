"""Microsoft's Graph SDK for Python (msgraph-sdk) reading the emulator's delta queries on applications,
as a tool that syncs a directory would: the initial round page by page, then the changes since.

  graph_delta.py initial            every page of the initial round; prints the ids and the deltaLink
  graph_delta.py next <deltaLink>   what changed since: ids changed, ids removed (with the reason)

Configured only as a private cloud would be: the Graph base URL (the SDK's own `host` setting, here
GRAPH_URL; the token's scope GRAPH_SCOPE), azure-identity's authority host (AZURE_AUTHORITY_HOST), the extra CA (SSL_CERT_FILE, read
by httpx and REQUESTS_CA_BUNDLE by azure-identity), and the Graph host allowed for the token.
Credentials: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET. One JSON line on stdout.
"""
import asyncio
import json
import os
import sys
import urllib.parse

from azure.identity.aio import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.applications.delta.delta_request_builder import DeltaRequestBuilder
from msgraph_core import GraphClientFactory
from kiota_abstractions.base_request_configuration import RequestConfiguration


def client(credential):
    graph = os.environ["GRAPH_URL"].rstrip("/")
    host = urllib.parse.urlsplit(graph).hostname
    # The token's resource is Graph's application ID URI, as the operator's FHIR_OP_GRAPH_SCOPE.
    scope = os.environ.get("GRAPH_SCOPE", "https://graph.microsoft.com/.default")
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[scope], allowed_hosts=[host])
    http = GraphClientFactory.create_with_default_middleware(host=graph)
    return GraphServiceClient(request_adapter=GraphRequestAdapter(auth, http))


def removed(app):
    """The `@removed` annotation the SDK keeps in additional_data (None for a changed object)."""
    r = (app.additional_data or {}).get("@removed")
    return r.get("reason") if isinstance(r, dict) else r


async def pages(graph, first):
    """Follows `@odata.nextLink` to the `@odata.deltaLink`; returns (applications, deltaLink, pages)."""
    apps, n, page = [], 0, await first
    while True:
        n += 1
        apps.extend(page.value or [])
        if page.odata_next_link:
            page = await graph.applications.delta.with_url(page.odata_next_link).get()
            continue
        return apps, page.odata_delta_link, n


async def main():
    cred = ClientSecretCredential(os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"],
                                  os.environ["AZURE_CLIENT_SECRET"],
                                  authority=os.environ["AZURE_AUTHORITY_HOST"])
    async with cred:
        graph = client(cred)
        if sys.argv[1] == "initial":
            query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=["id", "displayName"])
            first = graph.applications.delta.get(RequestConfiguration(query_parameters=query))
        else:
            first = graph.applications.delta.with_url(sys.argv[2]).get()
        apps, link, n = await pages(graph, first)
    print(json.dumps({
        "pages": n,
        "delta_link": link,
        "changed": sorted({a.id: a.display_name for a in apps if removed(a) is None}.items()),
        "removed": sorted([a.id, removed(a)] for a in apps if removed(a) is not None),
    }))


if __name__ == "__main__":
    asyncio.run(main())
