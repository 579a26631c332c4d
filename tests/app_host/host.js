// A small MCP Apps host for the browser test: the official host bridge (AppBridge from
// @modelcontextprotocol/ext-apps, bundled locally) in front of an MCP client that talks
// streamable HTTP to `referral-mcp serve` through the test server's /mcp proxy (which
// adds the API key, as a web host's backend would).
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import {
  AppBridge,
  PostMessageTransport,
  getToolUiResourceUri,
  RESOURCE_MIME_TYPE,
} from "@modelcontextprotocol/ext-apps/app-bridge";

const status = (t) => { document.getElementById("host-status").textContent = "host: " + t; };
window.__host = { calls: [], errors: [], ready: false };

// The CSP the host enforces for the View, from the resource's `_meta.ui.csp`: the
// spec's restrictive default, widened only by declared domains (ours declares none).
function cspFor(csp = {}) {
  const list = (xs) => (xs && xs.length ? " " + xs.join(" ") : "");
  const res = list(csp.resourceDomains);
  return [
    "default-src 'none'",
    `script-src 'unsafe-inline'${res}`,
    `style-src 'unsafe-inline'${res}`,
    `img-src data:${res}`,
    `font-src${res || " 'none'"}`,
    `connect-src${list(csp.connectDomains) || " 'none'"}`,
    `frame-src${list(csp.frameDomains) || " 'none'"}`,
    `base-uri${list(csp.baseUriDomains) || " 'none'"}`,
    "object-src 'none'",
  ].join("; ");
}

async function main() {
  const client = new Client(
    { name: "referral-mcp-test-host", version: "1.0.0" },
    { capabilities: { extensions: { "io.modelcontextprotocol/ui": { mimeTypes: [RESOURCE_MIME_TYPE] } } } },
  );
  await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", location.href)));
  const { tools } = await client.listTools();
  const tool = tools.find((t) => t.name === "list_referrals");
  const uri = getToolUiResourceUri(tool);
  if (!uri) throw new Error("list_referrals has no _meta.ui.resourceUri");
  const { contents } = await client.readResource({ uri });
  const page = contents[0];
  if (page.mimeType !== RESOURCE_MIME_TYPE) throw new Error("unexpected MIME type " + page.mimeType);
  const csp = cspFor(page._meta?.ui?.csp);
  window.__host.csp = csp;
  const html = page.text.replace(
    /<head>/i,
    `<head><meta http-equiv="Content-Security-Policy" content="${csp}">`,
  );

  const iframe = document.createElement("iframe");
  iframe.id = "app";
  iframe.setAttribute("sandbox", "allow-scripts");
  document.getElementById("chat").appendChild(iframe);

  const bridge = new AppBridge(
    client,
    { name: "referral-mcp-test-host", version: "1.0.0" },
    { serverTools: {}, serverResources: {}, logging: {} },
    { hostContext: { theme: "light", displayMode: "inline", platform: "web", containerDimensions: { maxHeight: 900 } } },
  );
  bridge.onsizechange = ({ height }) => { if (height) iframe.style.height = Math.min(height, 900) + "px"; };
  bridge.oninitialized = async () => {
    const args = { status: "review_required", limit: 20 };
    await bridge.sendToolInput({ arguments: args });
    const result = await client.callTool({ name: "list_referrals", arguments: args });
    await bridge.sendToolResult(result);
    window.__host.ready = true;
    status("list_referrals result sent to the view");
  };
  // The bridge is listening before the View's first message can arrive.
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  // connect() set up forwarding to the server; record what the View asks for on the way.
  const auto = bridge.oncalltool;
  bridge.oncalltool = async (params, extra) => {
    window.__host.calls.push({ name: params.name, arguments: params.arguments });
    return auto(params, extra);
  };
  iframe.srcdoc = html;
  status("view loading");
}

main().catch((e) => { window.__host.errors.push(String(e && e.stack || e)); status("error: " + e); });
