/**
 * The OpenAPI 3.1 description of the control API, served at `/openapi.json`. The tests check the
 * API's answers against it.
 *
 * @module
 */

/** A JSON body of `schema`, with `description` for an answer. */
function json(schema: Record<string, unknown>, description?: string) {
  return { description, content: { "application/json": { schema } } };
}

/** An answer of the schema named `schema`. */
function ok(schema: string, description: string) {
  return json({ $ref: `#/components/schemas/${schema}` }, description);
}

const error = ok(
  "Error",
  "a bad value, an unknown name, or a change the server cannot make; nothing changed",
);
const unauthorized = ok("Error", "no token, or the wrong one (Authorization: Bearer TOKEN)");

const duration = {
  oneOf: [{ type: "string", examples: ["50ms", "1.5s", "2m"] }, { type: "number", minimum: 0 }],
  description: "a duration with its unit, or a bare number in the flag's unit",
};
const size = {
  oneOf: [{ type: "string", examples: ["1KiB", "64kB", "1MiB/s"] }, {
    type: "integer",
    minimum: 1,
  }],
  description: "bytes: a whole number, or with a unit",
};
const rate = { type: "number", minimum: 0, maximum: 1 };
const toggle = { type: ["boolean", "null"], description: "true turns it on; false or null off" };

/** An answer's schema: `properties`, all required, and `servers`, how many servers have it. */
function answer(properties: Record<string, unknown>) {
  return {
    type: "object",
    required: [...Object.keys(properties), "servers"],
    properties: { ...properties, servers: { type: "integer" } },
  };
}

/** The OpenAPI description of the control API, as a JSON value. */
export const CONTROL_OPENAPI = {
  openapi: "3.1.0",
  info: {
    title: "tcpecho control API",
    version: "1",
    description: "Change a running tcpecho serve's faults, readiness, limits and connections. " +
      "Every answer to a change says how many servers (workers) it reached.",
  },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    schemas: {
      Error: {
        type: "object",
        required: ["error"],
        properties: { error: { type: "string" } },
      },
      FaultValues: {
        type: "object",
        additionalProperties: false,
        description: "the fault flags of serve, by name, in their units",
        properties: {
          delay: duration,
          jitter: duration,
          bandwidth: size,
          slice: size,
          "slice-delay": duration,
          "reset-after": size,
          "reset-after-time": duration,
          "close-after": size,
          blackhole: toggle,
          "no-read": toggle,
          "stall-every": duration,
          "stall-for": duration,
          "corrupt-rate": rate,
          "drop-rate": rate,
          "duplicate-rate": rate,
          "fault-rate": { ...rate, description: "the share of connections hit (toxicity)" },
          seed: { type: "integer", minimum: 0, maximum: 4294967295 },
        },
      },
      FaultChange: {
        allOf: [{ $ref: "#/components/schemas/FaultValues" }],
        properties: {
          scope: {
            enum: ["new", "all"],
            description: "new connections only (default), or every open one too",
          },
          count: { type: "integer", minimum: 1, description: "only the next N connections" },
          for: { ...duration, description: "the change undoes itself after this long" },
        },
      },
      Faults: answer({ faults: { type: "object" }, description: { type: "string" } }),
      Ready: answer({ ready: { type: "boolean" } }),
      Limits: answer({
        limits: {
          type: "object",
          required: ["max-connections", "idle-timeout"],
          properties: {
            "max-connections": { type: ["integer", "null"] },
            "idle-timeout": { type: ["string", "null"] },
          },
        },
      }),
      Closed: answer({ closed: { type: "integer" }, reset: { type: "boolean" } }),
      Connections: answer({
        connections: {
          type: "array",
          items: {
            type: "object",
            required: ["id", "peer", "state", "received", "echoed", "faults", "age"],
            properties: {
              id: { type: "integer" },
              peer: { type: "string" },
              state: { type: "string" },
              received: { type: "integer" },
              echoed: { type: "integer" },
              faults: { type: "array", items: { type: "string" } },
              age: { type: "integer", description: "milliseconds since it was accepted" },
            },
          },
        },
      }),
    },
  },
  security: [{ bearer: [] }, {}],
  paths: {
    "/faults": {
      get: { responses: { 200: ok("Faults", "the faults new connections get") } },
      put: {
        description: "replace the faults",
        requestBody: json({ $ref: "#/components/schemas/FaultChange" }),
        responses: { 200: ok("Faults", "the faults now"), 400: error, 401: unauthorized },
      },
      patch: {
        description: "merge into the faults in force; null or false removes one",
        requestBody: json({ $ref: "#/components/schemas/FaultChange" }),
        responses: { 200: ok("Faults", "the faults now"), 400: error, 401: unauthorized },
      },
      delete: {
        description: "remove every fault",
        parameters: [{ name: "scope", in: "query", schema: { enum: ["new", "all"] } }],
        responses: { 200: ok("Faults", "no faults"), 401: unauthorized },
      },
    },
    "/ready": {
      get: { responses: { 200: ok("Ready", "what /readyz reports") } },
      put: {
        requestBody: json({
          oneOf: [{ type: "boolean" }, {
            type: "object",
            properties: { ready: { type: "boolean" } },
          }],
        }),
        responses: { 200: ok("Ready", "the readiness now"), 400: error, 401: unauthorized },
      },
    },
    "/limits": {
      get: { responses: { 200: ok("Limits", "the limits in force") } },
      put: {
        description: "change the limits given; null removes one. A new idle timeout reaches " +
          "the connections accepted from then on.",
        requestBody: json({
          type: "object",
          additionalProperties: false,
          properties: {
            "max-connections": { type: ["integer", "null"], minimum: 1 },
            "idle-timeout": { oneOf: [duration, { type: "null" }] },
          },
        }),
        responses: { 200: ok("Limits", "the limits now"), 400: error, 401: unauthorized },
      },
    },
    "/close": {
      post: {
        description: "close every open connection (FIN), or reset it (RST), or only a peer's",
        requestBody: json({
          type: "object",
          additionalProperties: false,
          properties: { reset: { type: "boolean" }, peer: { type: "string" } },
        }),
        responses: { 200: ok("Closed", "how many were closed"), 400: error, 401: unauthorized },
      },
    },
    "/connections": {
      get: { responses: { 200: ok("Connections", "the open connections") } },
    },
  },
} as const;
