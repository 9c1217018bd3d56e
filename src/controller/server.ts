// The reference controller's HTTPS server: TLS with the certificate under the controller's root
// CA, EVE's content types, a body limit, and every refusal logged with its reason. The
// endpoints themselves are ControllerApi's.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Log as Logger } from '../control/log.js';
import { ControllerApi } from './api.js';
import { loadControllerDir } from './controller-dir.js';
import { ControllerStore } from './store.js';

/** EVE bodies are small; anything past this is refused before it is buffered. */
const MAX_BODY = 256 * 1024;

export class ControllerServer {
  private constructor(
    private readonly server: Server,
    readonly store: ControllerStore,
    readonly api: ControllerApi,
  ) {}

  static start(options: { readonly dir: string; readonly host: string; readonly port: number; readonly log: Logger; readonly ticketLifetimeSeconds?: number }): Promise<ControllerServer> {
    const material = loadControllerDir(options.dir);
    const store = new ControllerStore(material.databaseFile);
    const api = new ControllerApi(store, material.keys, options.log, options.ticketLifetimeSeconds === undefined ? {} : { ticketLifetimeSeconds: options.ticketLifetimeSeconds });
    return ControllerServer.serve(api, store, material.tls, options);
  }

  /** Serves a given API (the tests give it a misbehaving one, to check the node's side). */
  static async serve(
    api: ControllerApi,
    store: ControllerStore,
    tls: { readonly certPem: string; readonly keyPem: string },
    options: { readonly host: string; readonly port: number; readonly log: Logger },
  ): Promise<ControllerServer> {
    const server = createServer({ cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' }, (request, response) => {
      void serve(api, options.log, request, response);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    options.log.log('info', 'controller started', { address: address.address, port: address.port });
    return new ControllerServer(server, store, api);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.store.close();
  }
}

async function readBody(request: IncomingMessage): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function serve(api: ControllerApi, log: Logger, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'https://controller').pathname;
  try {
    const body = await readBody(request);
    const result = body === undefined ? { status: 413, reason: `body over ${MAX_BODY} bytes` } : await api.handle(request.method ?? 'GET', path, body);
    if (result.reason !== undefined) log.log('warn', 'request refused', { method: request.method, path, status: result.status, reason: result.reason });
    // EVE's onboarding client wants a Content-Type even on an empty 200.
    const [type, payload] = result.body ? ['application/x-proto-binary', result.body] : ['text/plain', Buffer.from(result.reason ?? '')];
    response.writeHead(result.status, { 'Content-Type': type, 'Content-Length': payload.length });
    response.end(result.status === 304 ? undefined : payload);
  } catch (error) {
    log.log('error', 'request failed', { method: request.method, path, error: String(error) });
    if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain' });
    response.end();
  }
}
