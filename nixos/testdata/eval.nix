# Evaluates the edge NixOS modules offline. nixpkgs is not available here,
# so this is a small stand-in for the module system: enough for these
# modules, and explicit about what it leaves out.
#
# What it does:
#   - Options: the options of all modules are collected; their defaults
#     become definitions at option-default priority (1500), as do the
#     NixOS options of nixos-options.nix.
#   - Definitions: mkIf, mkMerge, mkOverride (mkDefault, mkForce) and
#     mkBefore/mkAfter are pushed down to the leaves and merged there: the
#     lowest priority number wins; lists of the winning priority are
#     concatenated; other values must be equal.
#   - Rounds: round 0 is the option defaults, nixos-options.nix and the
#     users' definitions. Each later round calls every module with the
#     previous round's config and merges its output in. The modules read
#     only declared options and nixos-options.nix, and one module reads
#     what another sets (networking.firewall.enable), so the result of
#     round 2 is what the module system's fixed point would give. Round 1
#     may hold errors in values nothing reads yet; laziness leaves them
#     unevaluated.
#   - Checks: the final values of declared options are checked against
#     their (stub) types, and a name under services.edge that no option
#     declares is an error, as it is in NixOS. Failed assertions are
#     returned, not thrown, so a test can expect them.
#
# What it leaves out: options outside services.edge (systemd.services and
# the rest are taken as free-form), imports (the module list is given),
# readOnly, and type merging beyond lists and attribute sets. A full check
# needs nixpkgs: nixpkgs.lib.nixosSystem { modules = [ ../modules ... ]; }.
{
  # NixOS modules (attribute sets, functions or paths) with the test's own
  # definitions.
  users ? [ ],
  # The edge modules to load, by file name.
  modules ? [ "common" "dns" "firewall" "vpn" "lb" "proxy" ],
}:
let
  lib = import ./stub-lib.nix;
  pkgs = import ./stub-pkgs.nix { inherit lib; };
  inherit (builtins)
    all attrNames concatLists concatMap filter foldl' head isAttrs
    isFunction isList length listToAttrs map typeOf;

  files = map (m: ../modules + "/${m}.nix") modules;
  nixosDefaults = import ./nixos-options.nix;

  # call gives a module's { options; config; } for config.
  call = config: m:
    let
      f = if isFunction m || isAttrs m then m else import m;
      r = if isFunction f then f { inherit config lib pkgs; options = { }; modulesPath = ""; } else f;
    in
    if r ? options || r ? config
    then { options = r.options or { }; config = r.config or { }; }
    else { options = { }; config = removeAttrs r [ "imports" "_file" "key" "disabledModules" "meta" ]; };

  # push turns a definition into a list of { prio; value; } with no
  # mkIf, mkMerge or mkOverride left at its top.
  push = prio: v:
    if isAttrs v && v ? _type then
      if v._type == "if" then (if v.condition then push prio v.content else [ ])
      else if v._type == "merge" then concatMap (push prio) v.contents
      else if v._type == "override" then push v.priority v.content
      else if v._type == "order" then push prio v.content
      else [ { inherit prio; value = v; } ]
    else [ { inherit prio; value = v; } ];

  # Derivations and values other than attribute sets are merged whole.
  isLeaf = v: !(isAttrs v) || v ? outPath || v ? _type;

  showPath = lib.concatStringsSep ".";

  mergeDefs = path: defs:
    if all (d: !isLeaf d.value) defs then
      let
        names = lib.unique (concatMap (d: attrNames d.value) defs);
        below = n: concatMap (d: if d.value ? ${n} then push d.prio d.value.${n} else [ ]) defs;
      in
      listToAttrs (concatMap
        (n:
          let ds = below n; in
          if ds == [ ] then [ ] else [ { name = n; value = mergeDefs (path ++ [ n ]) ds; } ])
        names)
    else
      let
        best = foldl' (m: d: if d.prio < m then d.prio else m) 100000 defs;
        values = map (d: d.value) (filter (d: d.prio == best) defs);
      in
      if all isList values then concatLists values
      else if all (v: v == head values) values then head values
      else throw "conflicting definitions of ${showPath path}";

  isOption = v: isAttrs v && (v._type or null) == "option";

  mergeOptions = a: b:
    a // lib.mapAttrs
      (n: v: if a ? ${n} && !isOption v && !isOption a.${n} then mergeOptions a.${n} v else v)
      b;

  isSubmodule = o: (o.type.name or null) == "submodule";

  # defaultsOf gives the defaults of an option tree as definitions.
  defaultsOf = opts: listToAttrs (concatMap
    (n:
      let o = opts.${n}; in
      if !isOption o then [ { name = n; value = defaultsOf o; } ]
      else if isSubmodule o then
        [ { name = n; value = lib.mkMerge ([ (defaultsOf o.type.options) ] ++ lib.optional (o ? default) o.default); } ]
      else if o ? default then [ { name = n; value = o.default; } ]
      else [ ])
    (attrNames opts));

  optionsOf = evaluated: foldl' mergeOptions { } (map (e: e.options) evaluated);

  definitions = config: evaluated: extra:
    push 1500 (defaultsOf (optionsOf evaluated))
    ++ push 1500 nixosDefaults
    ++ concatMap (u: push 100 (call config u).config) users
    ++ extra;

  round0 =
    let
      evaluated = map (call config0) files;
      config0 = mergeDefs [ ] (definitions config0 evaluated [ ]);
    in
    config0;

  round = prev:
    let evaluated = map (call prev) files;
    in {
      options = optionsOf evaluated;
      config = mergeDefs [ ] (definitions prev evaluated (concatMap (e: push 100 e.config) evaluated));
    };

  final = round (round round0).config;

  # checkTypes lists the errors of value against the option tree opts.
  checkTypes = path: opts: value:
    let
      declared = n: opts ? ${n};
      strict = lib.hasPrefix "services.edge" (showPath path);
      unknown = map (n: "${showPath (path ++ [ n ])}: no such option")
        (filter (n: !declared n) (if strict && isAttrs value then attrNames value else [ ]));
    in
    unknown ++ concatMap
      (n:
        let o = opts.${n}; p = path ++ [ n ]; in
        if !(isAttrs value && value ? ${n}) then [ ]
        else if isOption o then checkOption p o value.${n}
        else checkTypes p o value.${n})
      (attrNames opts);

  checkOption = p: o: v:
    if !(o ? type) then [ ]
    else if isSubmodule o then
      if !isAttrs v then [ "${showPath p}: a ${typeOf v}, want a submodule" ]
      else
        let
          free = filter (n: !(o.type.options ? ${n})) (attrNames v);
          freeErrors =
            if o.type.freeformType == null then map (n: "${showPath (p ++ [ n ])}: no such option") free
            else concatMap (n: if o.type.freeformType.check v.${n} then [ ] else [ "${showPath (p ++ [ n ])}: not a ${o.type.freeformType.name}" ]) free;
        in
        freeErrors ++ concatMap
          (n: if v ? ${n} then checkOption (p ++ [ n ]) o.type.options.${n} v.${n} else [ ])
          (attrNames o.type.options)
    else if o.type.check v then [ ]
    else [ "${showPath p}: a ${typeOf v}, want ${o.type.name}" ];
in
{
  inherit (final) config;
  failedAssertions = map (a: a.message) (filter (a: !a.assertion) (final.config.assertions or [ ]));
  typeErrors = checkTypes [ ] final.options final.config;
}
