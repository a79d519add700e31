import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  FEATURE_MINIMUMS,
  judgeServerVersion,
  MINIMUM_SUPPORTED,
  NEWEST_TESTED,
  OLDEST_TESTED,
  TESTED_MINORS,
} from "../../cli/core/kubernetes-versions.ts";
import { SECRET_POLICY_MINIMUM_MINOR } from "../../k8s/refresher-secret-policy.ts";

describe("the supported and tested Kubernetes versions", () => {
  it("needs 1.22 (server-side apply GA) and tests 1.32 to 1.36", () => {
    expect(MINIMUM_SUPPORTED).toEqual({ major: 1, minor: 22 });
    expect(OLDEST_TESTED).toEqual({ major: 1, minor: 32 });
    expect(NEWEST_TESTED).toEqual({ major: 1, minor: 36 });
  });

  it("tests exactly the minors the test bed pins a kube-apiserver for", () => {
    const pinned = readdirSync(join(import.meta.dirname, "../../testbed/control-plane"))
      .map((name) => /^kube-apiserver-1\.(\d+)$/.exec(name)?.[1])
      .filter((minor) => minor !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    expect(pinned).toEqual([...TESTED_MINORS]);
  });

  it("names the ValidatingAdmissionPolicy minor the templates use", () => {
    const policy = FEATURE_MINIMUMS.find((item) => item.feature.startsWith("ValidatingAdmission"));
    expect(policy?.minor).toBe(SECRET_POLICY_MINIMUM_MINOR);
  });
});

describe("judgeServerVersion", () => {
  it("refuses a server older than the features need, naming its version and the minimum", () => {
    const verdict = judgeServerVersion({ major: 1, minor: 21 });
    expect(verdict.kind).toBe("refuse");
    expect(verdict).toMatchObject({
      message: expect.stringContaining("runs Kubernetes 1.21; ECR Anywhere needs 1.22 or newer"),
    });
    expect(verdict).toMatchObject({
      message: expect.stringContaining("server-side apply needs 1.22"),
    });
    expect(verdict).not.toMatchObject({ message: expect.stringContaining("TokenRequest") });
  });

  it("lists every missing feature on a much older server", () => {
    const verdict = judgeServerVersion({ major: 1, minor: 17 });
    expect(verdict.kind).toBe("refuse");
    for (const minor of [18, 19, 20, 22])
      expect(verdict).toMatchObject({ message: expect.stringContaining(`needs 1.${minor}`) });
  });

  it("accepts with a warning a server between the minimum and the oldest tested minor", () => {
    for (const minor of [22, 31])
      expect(judgeServerVersion({ major: 1, minor })).toEqual({
        kind: "warn",
        message: `Kubernetes 1.${minor} is older than the oldest tested minor (1.32); it should work (1.22+ has every feature used) but is not tested`,
      });
  });

  it("accepts every minor in the tested range silently", () => {
    for (let minor = 32; minor <= 36; minor++)
      expect(judgeServerVersion({ major: 1, minor })).toEqual({ kind: "tested" });
  });

  it("warns for a server newer than the newest tested minor", () => {
    expect(judgeServerVersion({ major: 1, minor: 37 })).toEqual({
      kind: "warn",
      message:
        "Kubernetes 1.37 is newer than the newest tested minor (1.36); it should work but is not tested yet",
    });
    expect(judgeServerVersion({ major: 2, minor: 0 }).kind).toBe("warn");
  });

  it("warns, without refusing, when the server reports no numeric version", () => {
    expect(judgeServerVersion({ major: 1, minor: Number.NaN }).kind).toBe("warn");
  });
});
