/** Every fuzz target, in the order the tables list them (shared by test/fuzz/fuzz.test.ts and bench/fuzz.ts). */
import type { FuzzTarget } from "./target.js";
import { h2FramesTarget } from "./h2-frames.js";
import { huffmanTarget } from "./huffman.js";
import { hpackTarget } from "./hpack.js";
import { hpackPythonTarget } from "./hpack-python.js";
import { h2ConnectionTarget } from "./h2-connection.js";
import { csrTarget } from "./csr.js";
import { jwtTarget } from "./jwt.js";
import { admissionTarget } from "./admission.js";
import { policyTarget } from "./policy.js";
import { injectYamlTarget } from "./inject-yaml.js";
import { iptablesTarget } from "./iptables.js";

export const FUZZ_TARGETS: FuzzTarget<any>[] = [h2FramesTarget, huffmanTarget, hpackTarget, hpackPythonTarget, h2ConnectionTarget, csrTarget, jwtTarget, admissionTarget, policyTarget, injectYamlTarget, iptablesTarget];
