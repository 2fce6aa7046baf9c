# A small stand-in for nixpkgs' `lib`, enough to evaluate nix/module.nix and
# flake.nix here, where nixpkgs cannot be had (no network).  Only builtins.
#
# NOT the real module system: `evalModules` below merges definitions the
# simple way (mkIf/mkMerge/mkDefault, priorities, option defaults, types
# checked with their `check`, submodules with `name`, lists concatenated,
# attribute sets merged), and options nobody declares (systemd.*,
# environment.*, users.*, ...) are merged freely without types.  It catches
# typos, wrong option paths, type errors in the values we use and wrong
# rendering; the real check is the NixOS VM test in flake.nix (checks.<system>.vm).
let
  inherit (builtins) attrNames concatLists concatStringsSep elem filter foldl' functionArgs
    hasAttr head isAttrs isBool isFloat isFunction isInt isList isPath isString length
    listToAttrs map mapAttrs match removeAttrs substring stringLength tail toJSON typeOf;

  isType = t: x: isAttrs x && (x._type or null) == t;
  isDerivation = x: isAttrs x && (x.type or null) == "derivation";

  mkType = name: description: check: extra: { _type = "type"; inherit name description check; } // extra;

  types = rec {
    bool = mkType "bool" "boolean" isBool { };
    str = mkType "str" "string" isString { };
    int = mkType "int" "signed integer" isInt { };
    float = mkType "float" "floating point number" isFloat { };
    ints = {
      positive = mkType "positiveInt" "positive integer" (x: isInt x && x > 0) { };
      unsigned = mkType "unsignedInt" "unsigned integer" (x: isInt x && x >= 0) { };
      between = lo: hi: mkType "intBetween" "integer between ${toString lo} and ${toString hi}"
        (x: isInt x && x >= lo && x <= hi) { };
    };
    package = mkType "package" "package" (x: isDerivation x || (isString x && substring 0 11 x == "/nix/store/")) { };
    path = mkType "path" "path" (x: isPath x || (isString x && substring 0 1 x == "/")) { };
    enum = vs: mkType "enum" "one of ${concatStringsSep ", " (map toJSON vs)}" (x: elem x vs) { };
    strMatching = re: mkType "strMatching" "string matching ${toJSON re}" (x: isString x && match re x != null) { };
    nullOr = t: mkType "nullOr" "null or ${t.description}" (x: x == null || t.check x) { elem = t; };
    listOf = t: mkType "listOf" "list of ${t.description}" isList { elem = t; };
    attrsOf = t: mkType "attrsOf" "attribute set of ${t.description}" isAttrs { elem = t; };
    either = a: b: mkType "either" "${a.description} or ${b.description}" (x: a.check x || b.check x) { alts = [ a b ]; };
    oneOf = ts: mkType "oneOf" (concatStringsSep " or " (map (t: t.description) ts))
      (x: foldl' (acc: t: acc || t.check x) false ts) { alts = ts; };
    submodule = m: mkType "submodule" "submodule" (x: isAttrs x || isFunction x) { module = m; };
    anything = mkType "anything" "anything" (x: true) { };
  };

  mkOption = attrs: attrs // { _type = "option"; };
  mkEnableOption = d: mkOption { type = types.bool; default = false; description = "Whether to enable ${d}."; };
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;
  literalExpression = text: { _type = "literalExpression"; inherit text; };

  optional = c: x: if c then [ x ] else [ ];
  optionals = c: x: if c then x else [ ];
  optionalAttrs = c: x: if c then x else { };
  nameValuePair = name: value: { inherit name value; };
  mapAttrs' = f: s: listToAttrs (map (n: f n s.${n}) (attrNames s));
  mapAttrsToList = f: s: map (n: f n s.${n}) (attrNames s);
  filterAttrs = p: s: listToAttrs (concatLists (map (n: if p n s.${n} then [ { name = n; value = s.${n}; } ] else [ ]) (attrNames s)));
  genAttrs = names: f: listToAttrs (map (n: { name = n; value = f n; }) names);
  hasPrefix = p: s: substring 0 (stringLength p) s == p;
  concatMap = f: l: concatLists (map f l);

  # ---- a miniature module system -----------------------------------------
  # Definitions: plain values, or mkIf / mkMerge / mkOverride wrappers at
  # any level.  As in the real module system, wrappers are pushed down to
  # the leaves without evaluating conditions (a module's own options decide
  # whether its config applies): a definition is { priority; conds; value; }
  # and its conditions are evaluated only where an option is merged.
  push = d:
    let v = d.value; in
    if isType "if" v then push (d // { conds = d.conds ++ [ v.condition ]; value = v.content; })
    else if isType "merge" v then concatLists (map (c: push (d // { value = c; })) v.contents)
    else if isType "override" v then push (d // { priority = v.priority; value = v.content; })
    else [ d ];
  active = defs: filter (d: foldl' (a: c: a && c) true d.conds) defs;

  # The defs at attribute `k` of a list of (pushed) attribute-set defs.
  sub = k: defs: concatLists (map (d:
    if isAttrs d.value && !isDerivation d.value && hasAttr k d.value then push (d // { value = d.value.${k}; }) else [ ]) defs);

  keysOf = defs: foldl' (acc: d:
    acc ++ filter (k: !(elem k acc)) (if isAttrs d.value && !isDerivation d.value then attrNames d.value else [ ])) [ ] defs;

  best = defs:
    let p = foldl' (m: d: if d.priority < m then d.priority else m) 999999 defs;
    in filter (d: d.priority == p) defs;

  showPath = path: concatStringsSep "." path;

  # Merge the definitions of one option.
  mergeOption = path: opt: defs:
    let
      withDefault = active defs ++ optional (opt ? default) { priority = 1500; conds = [ ]; value = opt.default; };
      top = best withDefault;
    in
    if top == [ ] then throw "mock-lib: option ${showPath path} is used but not defined"
    else mergeType path opt.type top;

  mergeType = path: t: defs:
    let
      values = map (d: d.value) defs;
      bad = filter (v: !t.check v) values;
      one =
        if length values == 1 || foldl' (a: v: a && v == head values) true values then head values
        else throw "mock-lib: option ${showPath path} has conflicting definitions: ${toJSON values}";
    in
    if bad != [ ] then
      throw "mock-lib: option ${showPath path}: value ${toJSON (head bad)} is not a ${t.description}"
    else if t.name == "nullOr" then
      (let nn = filter (d: d.value != null) defs; in if nn == [ ] then null else mergeType path t.elem nn)
    else if t.name == "listOf" then
      (let l = concatLists values; in
       map (i: mergeType (path ++ [ "[${toString i}]" ]) t.elem [ { priority = 100; conds = [ ]; value = builtins.elemAt l i; } ])
         (builtins.genList (i: i) (length l)))
    else if t.name == "attrsOf" then
      listToAttrs (map (n: { name = n; value = mergeType (path ++ [ n ]) (t.elem // { _name = n; }) (active (sub n defs)); })
        (keysOf defs))
    else if t.name == "submodule" then evalSubmodule path t (t._name or (if path == [ ] then "" else builtins.elemAt path (length path - 1))) defs
    else one;

  evalSubmodule = path: t: name: defs:
    let
      m = if isFunction t.module then t.module { inherit name lib; config = result; } else t.module;
      result = mergeTree true path (m.options or { }) defs;
    in
    result;

  isOption = isType "option";

  # Merge a tree of declarations with definitions.  Below a declared option
  # set (strict), an undeclared attribute is an error; elsewhere it is
  # merged freely.
  mergeTree = strict: path: decls: defs:
    let
      keys = filter (k: !(elem k (attrNames decls))) (keysOf defs);
      declared = mapAttrs (k: d:
        if isOption d then mergeOption (path ++ [ k ]) d (sub k defs)
        else mergeTree true (path ++ [ k ]) d (sub k defs)) decls;
      free = listToAttrs (map (k:
        if strict then throw "mock-lib: ${showPath (path ++ [ k ])} is not an option"
        else { name = k; value = mergeFree (path ++ [ k ]) (sub k defs); }) keys);
    in
    declared // free;

  mergeFree = path: defs:
    let values = map (d: d.value) (best (active defs)); in
    if values == [ ] then null
    else if foldl' (a: v: a && isList v) true values then concatLists values
    else if foldl' (a: v: a && isAttrs v && !isDerivation v && !isType "option" v) true values then
      mergeTree false path { } (best (active defs))
    else if foldl' (a: v: a && v == head values) true values then head values
    else throw "mock-lib: ${showPath path} has conflicting definitions";

  # evalModules { modules; args; } -> { config; options; }
  evalModules = { modules, args ? { } }:
    let
      load = m:
        let
          f = if isPath m || isString m then import m else m;
          v = if isFunction f then f (args // { inherit config lib; options = decls; }) else f;
          defs = if v ? config then v.config else removeAttrs v [ "imports" "options" "_file" "key" "meta" ];
        in
        [ { options = v.options or { }; inherit defs; } ] ++ concatLists (map load (v.imports or [ ]));
      loaded = concatLists (map load modules);
      decls = foldl' mergeDecls { } (map (l: l.options) loaded);
      mergeDecls = a: b: a // mapAttrs (k: v:
        if hasAttr k a && !isOption v && !isOption a.${k} then mergeDecls a.${k} v else v) b;
      config = mergeTree false [ ] decls (concatLists (map (l: push { priority = 100; conds = [ ]; value = l.defs; }) loaded));
    in
    { inherit config; options = decls; };

  lib = {
    inherit types mkOption mkEnableOption mkIf mkMerge mkOverride mkDefault mkForce literalExpression
      optional optionals optionalAttrs nameValuePair mapAttrs' mapAttrsToList filterAttrs genAttrs
      hasPrefix concatMap evalModules isDerivation;
    inherit (builtins) concatLists attrNames attrValues mapAttrs;
    licenses.lgpl21Plus = { spdxId = "LGPL-2.1-or-later"; };
    platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
  };
in
lib
