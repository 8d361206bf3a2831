# A stand-in for the parts of nixpkgs' lib that the edge modules use, for
# evaluating them offline (nixpkgs is not available to the tests). Values
# have the shapes nixpkgs gives them: mkIf is { _type = "if"; condition;
# content; }, mkMerge { _type = "merge"; contents; }, mkOverride
# { _type = "override"; priority; content; }, mkOption { _type = "option";
# ... }, so eval.nix can merge module outputs the way the module system
# does. Types carry a check function that eval.nix applies to the final
# values of declared options.
let
  inherit (builtins)
    all any attrNames concatLists concatMap concatStringsSep elem filter
    foldl' genList head isAttrs isBool isFunction isInt isList isPath
    isString length listToAttrs map mapAttrs stringLength substring
    typeOf;

  mkType = name: check: extra: { _type = "option-type"; inherit name check; } // extra;

  isDerivationLike = v: isAttrs v && (v ? outPath);

  # JSON-representable values: what pkgs.formats.json accepts.
  isJSON = v:
    if isAttrs v then !(v ? _type) && all (n: isJSON v.${n}) (attrNames v)
    else if isList v then all isJSON v
    else !(isFunction v) && !(isPath v);

  lib = rec {
    # Module system.
    mkOption = attrs: { _type = "option"; } // attrs;
    mkEnableOption = name: mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = "Whether to enable ${name}.";
    };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkOverride = priority: content: { _type = "override"; inherit priority content; };
    mkOptionDefault = mkOverride 1500;
    mkDefault = mkOverride 1000;
    mkForce = mkOverride 50;
    mkBefore = content: { _type = "order"; priority = 500; inherit content; };
    mkAfter = content: { _type = "order"; priority = 1500; inherit content; };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    literalMD = text: { _type = "literalMD"; inherit text; };

    types = rec {
      bool = mkType "bool" isBool { };
      str = mkType "str" isString { };
      lines = mkType "lines" isString { };
      int = mkType "int" isInt { };
      port = mkType "port" (v: isInt v && v >= 0 && v <= 65535) { };
      path = mkType "path" (v: isPath v || (isString v && substring 0 1 v == "/")) { };
      package = mkType "package" isDerivationLike { };
      attrs = mkType "attrs" isAttrs { };
      anything = mkType "anything" (v: true) { };
      listOf = t: mkType "listOf ${t.name}" (v: isList v && all t.check v) { elemType = t; };
      attrsOf = t: mkType "attrsOf ${t.name}" (v: isAttrs v && all (n: t.check v.${n}) (attrNames v)) { elemType = t; };
      nullOr = t: mkType "nullOr ${t.name}" (v: v == null || t.check v) { elemType = t; };
      enum = values: mkType "enum" (v: elem v values) { inherit values; };
      either = a: b: mkType "either ${a.name} ${b.name}" (v: a.check v || b.check v) { };
      # m is a module: an attrset { options; freeformType; } or a function
      # of { config, lib, ... } returning one.
      submodule = m:
        let
          body = if isFunction m then m { inherit lib; config = { }; name = "‹name›"; } else m;
        in
        mkType "submodule" isAttrs {
          options = body.options or { };
          freeformType = body.freeformType or null;
        };
    };

    # Lists.
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    inherit all any concatLists concatMap elem filter foldl' head length;
    flatten = x: if isList x then concatMap flatten x else [ x ];
    unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];

    # Attribute sets.
    inherit attrNames listToAttrs mapAttrs;
    optionalAttrs = cond: as: if cond then as else { };
    nameValuePair = name: value: { inherit name value; };
    genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
    filterAttrs = pred: set:
      listToAttrs (concatMap (n: if pred n set.${n} then [ (nameValuePair n set.${n}) ] else [ ]) (attrNames set));
    mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
    mapAttrs' = f: set: listToAttrs (map (n: f n set.${n}) (attrNames set));
    attrValues = set: map (n: set.${n}) (attrNames set);
    recursiveUpdate = a: b:
      a // mapAttrs (n: v: if isAttrs v && isAttrs (a.${n} or null) then recursiveUpdate a.${n} v else v) b;

    # Strings.
    inherit concatStringsSep;
    concatStrings = concatStringsSep "";
    concatMapStrings = f: xs: concatStringsSep "" (map f xs);
    concatMapStringsSep = sep: f: xs: concatStringsSep sep (map f xs);
    optionalString = cond: s: if cond then s else "";
    hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
    removePrefix = pre: s: if hasPrefix pre s then substring (stringLength pre) (-1) s else s;
    escapeShellArg = s: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s)}'";

    # Sources and packages. cleanSource gives back a string so that no
    # evaluation here copies the repository into a store.
    cleanSource = src: toString src;
    cleanSourceWith = { src, filter ? (path: type: true), name ? null }: toString src;
    fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    platforms.linux = [ "aarch64-linux" "x86_64-linux" ];

    # For eval.nix.
    inherit isJSON;
  };
in
lib
