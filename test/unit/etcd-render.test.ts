/**
 * External etcd, rendered for a three-member cluster and checked by the tools that will read it: shellcheck and dash
 * for the scripts, systemd-analyze for the unit, a YAML parser for etcd's configuration, openssl for the certificates.
 * Also the EtcdPki provider's create/diff/update (issue once, keep what exists, issue only what is new), directly and
 * after Pulumi's closure serialization.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import {
  ETCD_BINARY,
  ETCD_CA_FILE,
  ETCD_CLIENT_CERT_FILE,
  ETCD_CLIENT_KEY_FILE,
  ETCD_CONFIG_FILE,
  ETCD_MEMBER_CERT_FILE,
  ETCD_MEMBER_KEY_FILE,
  ETCD_UNIT_FILE,
  etcdClientUrls,
  etcdClusterOf,
  etcdMemberDeleteScript,
  etcdMemberFiles,
  etcdMemberScript,
  isEtcdSecretFile,
  type EtcdCluster,
  type EtcdRelease,
} from "../../modules/etcd";
import { rocky9 } from "../../modules/os/rhel";
import { DEFAULT_PINS } from "../../modules/pins";
import {
  CA_VALIDITY_DAYS,
  etcdPkiProvider,
  generateEtcdPki,
  LEAF_VALIDITY_DAYS,
  type EtcdPkiOutputs,
  type EtcdPkiProvider,
} from "../../modules/pki";
import { parseStack } from "../../modules/stack";
import type { ManagedFile } from "../../modules/steps";
import { runProcess } from "../harness/render-fixtures";

const TMP = mkdtempSync(join(tmpdir(), "nf-etcd-render-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

const CLUSTER: EtcdCluster = {
  name: "metal",
  members: [
    { name: "etcd-1", address: "192.0.2.31" },
    { name: "etcd-2", address: "192.0.2.32" },
    { name: "etcd-3", address: "192.0.2.33" },
  ],
};
const DAY_MS = 24 * 3600 * 1000;
/** The pinned release for an amd64 member, from the upstream release URL. */
const RELEASE: EtcdRelease = {
  version: DEFAULT_PINS.etcd.version,
  url: `https://github.com/etcd-io/etcd/releases/download/v3.6.8/etcd-v3.6.8-linux-amd64.tar.gz`,
  sha256: DEFAULT_PINS.etcd.sha256.amd64,
  directory: "etcd-v3.6.8-linux-amd64",
};

let pki: EtcdPkiOutputs;
before(() => {
  pki = generateEtcdPki({ clusterName: CLUSTER.name, members: CLUSTER.members });
});

function fileAt(files: readonly ManagedFile[], path: string): ManagedFile {
  const file = files.find((f) => f.path === path);
  assert.ok(file, `${path} is among the files`);
  return file;
}

function writeTemp(name: string, content: string): string {
  const path = join(mkdtempSync(join(TMP, "f-")), name);
  writeFileSync(path, content);
  return path;
}

async function openssl(args: string[]): Promise<string> {
  const result = await runProcess("openssl", args);
  assert.equal(result.code, 0, `openssl ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

describe("scripts: shellcheck finds nothing, even at style level, and dash parses them", () => {
  for (const member of CLUSTER.members) {
    it(member.name, async () => {
      const scripts = {
        "member.sh": etcdMemberScript(member, CLUSTER, pki, RELEASE),
        "delete.sh": etcdMemberDeleteScript(member, CLUSTER),
        "delete-keep-packages.sh": etcdMemberDeleteScript(member, CLUSTER, { removePackages: false }),
      };
      const paths = Object.entries(scripts).map(([name, text]) => writeTemp(name, text));
      const check = await runProcess("shellcheck", ["-s", "sh", "-S", "style", "-f", "gcc", ...paths]);
      assert.equal(check.stdout + check.stderr, "", "shellcheck findings");
      assert.equal(check.code, 0);
      for (const path of paths) {
        assert.deepEqual(await runProcess("dash", ["-n", path]), { code: 0, stdout: "", stderr: "" }, path);
      }
      // The machine name goes through the quoting helper into the prelude, as in every step.
      assert.match(scripts["member.sh"], new RegExp(`^nf_machine=${member.name}$`, "m"));
      assert.match(scripts["member.sh"], /^nf_pkg_ensure curl ca-certificates$/m);
      // The pinned release, downloaded and verified by nf_fetch; its programs installed from its one directory.
      assert.match(scripts["member.sh"], new RegExp(`^  nf_fetch ${RELEASE.url} ${RELEASE.sha256} `, "m"));
      assert.match(
        scripts["member.sh"],
        /^ {2}install -m 0755 .*\/etcd-v3\.6\.8-linux-amd64\/etcdctl \/usr\/local\/bin\//m,
      );
      assert.match(scripts["delete.sh"], /^rm -f \/usr\/local\/bin\/etcd /m);
      assert.doesNotMatch(scripts["delete-keep-packages.sh"], /nf_pkg_remove_recorded$/m);
      assert.match(scripts["delete.sh"], /^rm -rf \/var\/lib\/etcd\/metal$/m);
    });
  }

  it("the script changes when any of the member's files change (the restart stamp), and only then", () => {
    const same = etcdMemberScript("etcd-1", CLUSTER, pki, RELEASE);
    assert.equal(etcdMemberScript("etcd-1", CLUSTER, pki, RELEASE), same);
    const other = generateEtcdPki({ clusterName: CLUSTER.name, members: CLUSTER.members });
    assert.notEqual(etcdMemberScript("etcd-1", CLUSTER, other, RELEASE), same);
  });

  it("refuses a machine that is not a member, and a non-Debian OS", () => {
    assert.throws(
      () => etcdMemberScript("etcd-9", CLUSTER, pki, RELEASE),
      /^Error: etcd-9: etcd-member: not a member of/,
    );
    assert.throws(
      () => etcdMemberScript("etcd-1", CLUSTER, pki, RELEASE, { os: rocky9 }),
      /etcd-1: etcd-member: etcd members need a Debian-family OS/,
    );
  });
});

describe("the unit: systemd-analyze verify prints nothing", () => {
  const hostUnits = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((d) =>
    existsSync(join(d, "sysinit.target")),
  );

  /** verify in a temporary root: the host's system units, the rendered unit, a stand-in etcd executable. */
  async function verify(files: readonly ManagedFile[], withEtcd = true) {
    assert.ok(hostUnits, "this host has systemd's unit directory");
    const root = mkdtempSync(join(TMP, "root-"));
    const unitDir = realpathSync(hostUnits);
    cpSync(unitDir, join(root, unitDir), { recursive: true, verbatimSymlinks: true });
    if (withEtcd) {
      mkdirSync(dirname(join(root, ETCD_BINARY)), { recursive: true });
      writeFileSync(join(root, ETCD_BINARY), "#!/bin/sh\n# test stand-in for etcd\nexit 0\n");
      chmodSync(join(root, ETCD_BINARY), 0o755);
    }
    const unit = fileAt(files, ETCD_UNIT_FILE);
    mkdirSync(dirname(join(root, unit.path)), { recursive: true });
    writeFileSync(join(root, unit.path), unit.content);
    const result = await runProcess("systemd-analyze", [
      "verify",
      `--root=${root}`,
      "--man=no",
      "--generators=no",
      "nodeforge-etcd.service",
    ]);
    return { ok: result.code === 0 && result.stdout + result.stderr === "", output: result.stdout + result.stderr };
  }

  for (const member of CLUSTER.members) {
    it(member.name, async () => {
      const result = await verify(etcdMemberFiles(member, CLUSTER, pki));
      assert.equal(result.output, "");
      assert.ok(result.ok);
    });
  }

  it("the check itself fails on an unknown key and on a missing executable", async () => {
    const files = etcdMemberFiles("etcd-1", CLUSTER, pki);
    const broken = files.map((f) =>
      f.path === ETCD_UNIT_FILE ? { ...f, content: f.content.replace("Restart=", "Restrat=") } : f,
    );
    assert.match((await verify(broken)).output, /Unknown key 'Restrat' in section \[Service\]/);
    assert.equal((await verify(files, false)).ok, false);
  });
});

describe("files", () => {
  it("keys are root's, mode 0600; certificates and configuration are readable", () => {
    for (const member of CLUSTER.members) {
      const files = etcdMemberFiles(member, CLUSTER, pki);
      assert.deepEqual(
        files.map((f) => [f.path, f.mode, f.owner, f.group]),
        [
          [ETCD_CA_FILE, "0644", "root", "root"],
          [ETCD_MEMBER_CERT_FILE, "0644", "root", "root"],
          [ETCD_MEMBER_KEY_FILE, "0600", "root", "root"],
          [ETCD_CLIENT_CERT_FILE, "0644", "root", "root"],
          [ETCD_CLIENT_KEY_FILE, "0600", "root", "root"],
          [ETCD_CONFIG_FILE, "0644", "root", "root"],
          [ETCD_UNIT_FILE, "0644", "root", "root"],
        ],
      );
      assert.equal(fileAt(files, ETCD_MEMBER_KEY_FILE).content, pki.memberKeys[member.name]);
      assert.deepEqual(
        files.filter((f) => isEtcdSecretFile(f.path)).map((f) => f.path),
        [ETCD_MEMBER_KEY_FILE, ETCD_CLIENT_KEY_FILE],
      );
    }
  });

  it("etcd's configuration: initial-cluster lists all three members on https, TLS with client certificates", () => {
    for (const member of CLUSTER.members) {
      const config = parseYaml(fileAt(etcdMemberFiles(member, CLUSTER, pki), ETCD_CONFIG_FILE).content) as Record<
        string,
        unknown
      >;
      assert.equal(config.name, member.name);
      assert.equal(
        config["initial-cluster"],
        "etcd-1=https://192.0.2.31:2380,etcd-2=https://192.0.2.32:2380,etcd-3=https://192.0.2.33:2380",
      );
      assert.equal(config["initial-cluster-state"], "new");
      assert.equal(config["initial-cluster-token"], "metal");
      assert.equal(config["data-dir"], "/var/lib/etcd/metal");
      assert.equal(config["listen-peer-urls"], `https://${member.address}:2380`);
      assert.equal(config["initial-advertise-peer-urls"], `https://${member.address}:2380`);
      assert.equal(config["listen-client-urls"], `https://${member.address}:2379,https://127.0.0.1:2379`);
      assert.equal(config["advertise-client-urls"], `https://${member.address}:2379`);
      for (const section of ["client-transport-security", "peer-transport-security"]) {
        assert.deepEqual(config[section], {
          "cert-file": ETCD_MEMBER_CERT_FILE,
          "key-file": "/run/credentials/nodeforge-etcd.service/member.key",
          "trusted-ca-file": ETCD_CA_FILE,
          "client-cert-auth": true,
        });
      }
    }
    assert.deepEqual(etcdClientUrls(CLUSTER), [
      "https://192.0.2.31:2379",
      "https://192.0.2.32:2379",
      "https://192.0.2.33:2379",
    ]);
  });

  it("refuses a PKI without this member's certificate or issued for another address", () => {
    const moved = {
      ...CLUSTER,
      members: CLUSTER.members.map((m, i) => (i === 0 ? { ...m, address: "192.0.2.99" } : m)),
    };
    assert.throws(() => etcdMemberFiles("etcd-1", moved, pki), /etcd-1: etcd-member: the certificate was issued for/);
    const { ["etcd-2"]: _dropped, ...others } = pki.memberCerts;
    assert.ok(_dropped);
    assert.throws(
      () => etcdMemberFiles("etcd-2", CLUSTER, { ...pki, memberCerts: others }),
      /etcd-2: etcd-member: the etcd PKI has no certificate for this member/,
    );
  });
});

describe("certificates (openssl)", () => {
  it("every member certificate and the client certificate chain to the CA", async () => {
    const ca = writeTemp("ca.crt", pki.caCert);
    const leaves = [...CLUSTER.members.map((m) => pki.memberCerts[m.name]!.cert), pki.clientCert];
    for (const [i, cert] of leaves.entries()) {
      const path = writeTemp(`leaf-${i}.crt`, cert);
      assert.equal((await openssl(["verify", "-CAfile", ca, path])).trim(), `${path}: OK`);
    }
    // Purpose checks: members serve and connect to peers; the client only connects.
    for (const member of CLUSTER.members) {
      const path = writeTemp(`${member.name}.crt`, pki.memberCerts[member.name]!.cert);
      for (const purpose of ["sslserver", "sslclient"]) {
        await openssl(["verify", "-CAfile", ca, "-purpose", purpose, path]);
      }
    }
    const client = writeTemp("client.crt", pki.clientCert);
    await openssl(["verify", "-CAfile", ca, "-purpose", "sslclient", client]);
    const asServer = await runProcess("openssl", ["verify", "-CAfile", ca, "-purpose", "sslserver", client]);
    assert.notEqual(asServer.code, 0, "the client certificate is not a server certificate");
  });

  it("member certificates carry the right SANs, keys match, validity is 10 years (CA) and 2 years (leaves)", async () => {
    for (const member of CLUSTER.members) {
      const path = writeTemp(`${member.name}.crt`, pki.memberCerts[member.name]!.cert);
      const text = await openssl(["x509", "-in", path, "-noout", "-text"]);
      assert.match(
        text,
        new RegExp(
          `DNS:${member.name}, DNS:localhost, IP Address:${member.address.replace(/\./g, "\\.")}, IP Address:127\\.0\\.0\\.1`,
        ),
      );
      assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
      assert.match(text, new RegExp(`Subject: CN ?= ?${member.name}, O ?= ?nodeforge`));
      const keyPath = writeTemp(`${member.name}.key`, pki.memberKeys[member.name]!);
      const certModulus = await openssl(["x509", "-in", path, "-noout", "-modulus"]);
      const keyModulus = await openssl(["rsa", "-in", keyPath, "-noout", "-modulus"]);
      assert.equal(certModulus, keyModulus, `${member.name}: key matches certificate`);
    }
    const ca = new X509Certificate(pki.caCert);
    assert.ok(ca.ca);
    const caDays = (Date.parse(ca.validTo) - Date.parse(ca.validFrom)) / DAY_MS;
    assert.ok(Math.abs(caDays - CA_VALIDITY_DAYS) < 1, `CA valid ${caDays} days`);
    for (const pem of [pki.clientCert, pki.memberCerts["etcd-1"]!.cert]) {
      const leaf = new X509Certificate(pem);
      assert.equal(leaf.ca, false);
      assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
      const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / DAY_MS;
      assert.ok(Math.abs(days - LEAF_VALIDITY_DAYS) < 1, `leaf valid ${days} days`);
    }
    const clientText = await openssl(["x509", "-in", writeTemp("client.crt", pki.clientCert), "-noout", "-text"]);
    assert.match(clientText, /Subject: CN ?= ?metal-etcd-client/);
    assert.doesNotMatch(clientText, /Subject Alternative Name/);
  });
});

describe("EtcdPki provider: generated once, kept, only what is new is issued", () => {
  let provider: EtcdPkiProvider;
  before(async () => {
    // As the engine gets it: serialized by Pulumi's closure serializer, then loaded from inside the package.
    const original = etcdPkiProvider;
    const { text, exportName } = await pulumi.runtime.serializeFunction(() => original, { allowSecrets: true });
    const dir = mkdtempSync(join(__dirname, ".serialized-"));
    try {
      writeFileSync(join(dir, "provider.js"), text);
      provider = (require(join(dir, "provider.js")) as Record<string, () => EtcdPkiProvider>)[exportName]!();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const inputs = (members = CLUSTER.members, clusterName = CLUSTER.name) => ({ clusterName, members });

  it("check refuses bad names, duplicates and non-IPv4 addresses", async () => {
    const result = await provider.check(inputs(), {
      clusterName: "Bad_Name",
      members: [
        { name: "etcd-1", address: "192.0.2.31" },
        { name: "etcd-1", address: "fd00::1" },
      ],
    });
    assert.deepEqual(result.failures, [
      { property: "clusterName", reason: '"Bad_Name" is not a DNS label' },
      { property: "members", reason: "members[1].name 'etcd-1' is not unique" },
      { property: "members", reason: "members[1].address is not an IPv4 address" },
    ]);
    assert.equal((await provider.check(inputs(), inputs())).failures, undefined);
  });

  it("a re-run with the same inputs changes nothing; adding a member issues only its certificate", async () => {
    const created = (await provider.create(inputs())).outs;
    assert.deepEqual(await provider.diff("id", created, inputs()), { changes: false, replaces: [] });
    const four = [...CLUSTER.members, { name: "etcd-4", address: "192.0.2.34" }];
    const diff = await provider.diff("id", created, inputs(four));
    assert.deepEqual(diff, { changes: true, replaces: [] });
    const updated = (await provider.update("id", created, inputs(four))).outs;
    assert.equal(updated.caCert, created.caCert);
    assert.equal(updated.caKey, created.caKey);
    assert.equal(updated.clientCert, created.clientCert);
    assert.equal(updated.clientKey, created.clientKey);
    for (const member of CLUSTER.members) {
      assert.deepEqual(updated.memberCerts[member.name], created.memberCerts[member.name]);
      assert.equal(updated.memberKeys[member.name], created.memberKeys[member.name]);
    }
    assert.ok(updated.memberCerts["etcd-4"] && updated.memberKeys["etcd-4"]);
    const ca = new X509Certificate(updated.caCert);
    assert.ok(new X509Certificate(updated.memberCerts["etcd-4"].cert).checkIssued(ca));
    // A read (refresh) returns the recorded state unchanged.
    assert.deepEqual((await provider.read("id", updated)).props, updated);
  });

  it("a member's new address reissues only its certificate; a removed member's is dropped", async () => {
    const created = (await provider.create(inputs())).outs;
    const moved = [CLUSTER.members[0]!, { name: "etcd-2", address: "192.0.2.42" }];
    const updated = (await provider.update("id", created, inputs(moved))).outs;
    assert.deepEqual(Object.keys(updated.memberCerts), ["etcd-1", "etcd-2"]);
    assert.deepEqual(Object.keys(updated.memberKeys), ["etcd-1", "etcd-2"]);
    assert.deepEqual(updated.memberCerts["etcd-1"], created.memberCerts["etcd-1"]);
    assert.notEqual(updated.memberCerts["etcd-2"]!.cert, created.memberCerts["etcd-2"]!.cert);
    assert.equal(updated.memberCerts["etcd-2"]!.address, "192.0.2.42");
    assert.match(
      new X509Certificate(updated.memberCerts["etcd-2"]!.cert).subjectAltName ?? "",
      /IP Address:192\.0\.2\.42/,
    );
  });

  it("renaming the cluster replaces the PKI (a new CA)", async () => {
    const created = (await provider.create(inputs())).outs;
    const diff = await provider.diff("id", created, inputs(CLUSTER.members, "other"));
    assert.deepEqual(diff.replaces, ["clusterName"]);
  });
});

describe("from a stack file", () => {
  it("etcdClusterOf: the stack's etcd.external.machines, named after the cluster; undefined for stacked etcd", () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMBhQa8V9LpMR1rfCvKqZc3Zt/QzkYAeSH7B/+A9OLVb";
    const lines = [
      "cluster:",
      "  name: metal",
      '  kubernetesVersion: "1.36.4"',
      "machines:",
      "  - name: cp-1",
      "    address: 192.0.2.10",
      "    role: control-plane",
      "    os: debian-12",
      `    hostKey: ${key}`,
    ];
    assert.equal(etcdClusterOf(parseStack(lines.join("\n"), "stacked.yaml")), undefined);
    const etcd = ["etcd:", "  external:", "    machines:"];
    for (const member of CLUSTER.members) {
      etcd.push(`      - name: ${member.name}`, `        address: ${member.address}`, "        os: debian-12");
      etcd.push(`        hostKey: ${key}`);
    }
    const stack = parseStack([...lines, ...etcd].join("\n"), "external.yaml");
    assert.deepEqual(etcdClusterOf(stack), CLUSTER);
  });
});
