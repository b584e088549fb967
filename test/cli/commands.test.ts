/** The command table that lets `tether X` load only X's files (src/cli/commands.ts). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Command } from "commander";
import { COMMAND_MODULES, modulesFor } from "../../src/cli/commands.js";

describe("the command table", () => {
  it("names exactly the top-level commands each file registers", async () => {
    for (const m of COMMAND_MODULES) {
      const program = new Command("tether");
      (await m.load())(program);
      assert.deepEqual(
        program.commands.map((c) => c.name()).sort(),
        [...m.names].sort(),
        `a file registering ${m.names.join(", ")} registers ${program.commands.map((c) => c.name()).join(", ")}: update COMMAND_MODULES`,
      );
    }
  });

  it("loads only the proxy's file for `tether proxy`, and everything for help or an unknown name", () => {
    assert.deepEqual(modulesFor(["proxy"]).map((m) => m.names), [["proxy"]]);
    assert.deepEqual(modulesFor(["proxy-init", "--proxy-uid", "2102"]).map((m) => m.names), [["proxy-init"]]);
    assert.equal(modulesFor(["local", "up"]).length, 2, "both files add sub-commands to `local`");
    for (const args of [[], ["--help"], ["-V"], ["help", "proxy"], ["proxi"]]) assert.equal(modulesFor(args), COMMAND_MODULES, args.join(" "));
  });

  it("registers everything in help order when all are loaded", async () => {
    const program = new Command("tether");
    for (const m of COMMAND_MODULES) (await m.load())(program);
    assert.deepEqual([...new Set(COMMAND_MODULES.flatMap((m) => m.names))], program.commands.map((c) => c.name()));
  });
});
