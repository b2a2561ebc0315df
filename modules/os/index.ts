import type { OsName } from "../stack";
import { debian12, ubuntu2204, ubuntu2404 } from "./debian";
import { rocky9 } from "./rhel";
import type { OsProfile } from "./types";

export type { OsProfile } from "./types";
export { debian12 } from "./debian";

const PROFILES: Record<OsName, OsProfile> = {
  "debian-12": debian12,
  "ubuntu-22.04": ubuntu2204,
  "ubuntu-24.04": ubuntu2404,
  "rocky-9": rocky9,
};

export function osProfile(name: OsName): OsProfile {
  return PROFILES[name];
}
