#!/bin/bash
# Brings the realm's users, and the clients and groups the program declares, in step with the
# stack, through Keycloak's admin CLI.
#
# Runs in a Job of the pinned Keycloak image (its bash and kcadm.sh) after every change of
# what it reads: a listed user missing from the realm is created with the generated
# password and joins its tier's group; a listed user in another tier's group leaves it; a
# user of the stack file (a member of MANAGED_GROUP, which every listed user joins) that the
# file no longer lists is deleted. Users outside that group (an administrator's own, and the
# self-service users an administrator puts in a tier group, issue 29) are left alone, and a
# password is set only when the user is created (a user may change it). Fails on the first
# error, so a `pulumi up` whose sync failed says so.
#
# The declared groups and clients come from the import's own JSON, so a realm imported before
# one was declared gets it too. A missing group is created; a group is never deleted, nor its
# members touched. A missing client is created whole; an existing one gets only the fields
# the program owns (owned.<clientId>.json: flows, redirect URIs, web origins, PKCE, secret)
# and keeps the rest as an administrator left it. A client no longer declared is left: no
# rule tells the program's clients from an administrator's, as MANAGED_GROUP does for users.
# A service account's declared client role is granted when missing, never revoked.
#
# kcadm.sh reads each `-s key=value` as JSON when it parses, so every string is quoted as
# JSON ("123" would become a number); names are DNS labels (no quotes, commas or spaces), so
# the csv output (no quoting with --noquotes) splits cleanly. Facts read in keycloak/keycloak
# integration/admin-cli at commits near 26.7 (docs/unverified.md): --config on every command
# (BaseAuthOptionsCmd), the admin password from KC_CLI_PASSWORD (BaseConfigCredentialsCmd),
# `create -i` printing the id (AbstractRequestCmd), `update ... -n` not reading first, and
# a group's members paged unless max is -1 (PaginationUtils).
#
# Environment: KEYCLOAK_URL, REALM, MANAGED_GROUP, ADMIN_DIR (files username, password),
# PASSWORDS_DIR (a file per user), USERS_FILE (lines "<user> <tier> <email>"), TIERS_FILE
# (a tier per line), GROUPS_FILE (a group per line), CLIENTS_FILE (a clientId per line),
# CLIENTS_DIR (client.<clientId>.json, owned.<clientId>.json), ROLES_FILE (lines "<clientId>
# <client> <role>", a service account's), REALM_FILE (the realm's owned fields, JSON),
# SECRETS_DIR (a file per ${NAME} placeholder of the
# clients' JSON; absent when none has one), KCADM (the CLI), KCADM_CONFIG (a writable file:
# the root filesystem is read-only).
set -euo pipefail
# A lookup that fails inside $(...) fails the script too, not read as "none found".
shopt -s inherit_errexit

kc() {
    "$KCADM" "$@" --config "$KCADM_CONFIG" </dev/null
}

# Lines "<id>,<name>" of `kc get ... --fields id,<name> --format csv --noquotes`.
csv() {
    kc get "$@" --format csv --noquotes
}

# A JSON string of $1.
json_string() {
    printf '"%s"' "$1"
}

# kc with the JSON $1 as its body, read from standard input (`-f -`): a client's secret
# reaches kcadm through a pipe, never its command line.
kc_body() {
    local body=$1
    shift
    printf '%s' "$body" | "$KCADM" "$@" -f - --config "$KCADM_CONFIG"
}

# The file $1 with each ${NAME} filled from the file NAME in SECRETS_DIR, as the operator
# fills the import's placeholders. Fails on an empty secret or a placeholder left unfilled.
filled() {
    local text file name value bs=\\
    text=$(cat "$1")
    if [ -d "$SECRETS_DIR" ]; then
        for file in "$SECRETS_DIR"/*; do
            [ -f "$file" ] || continue
            name=${file##*/}
            [[ $text == *"\${$name}"* ]] || continue
            value=$(cat "$file")
            [ -n "$value" ] || { echo "no secret $name" >&2; exit 1; }
            # A JSON string's content; the replacements quoted, so bash takes them literally.
            value=${value//"$bs"/"$bs$bs"}
            value=${value//'"'/"$bs\""}
            text=${text//"\${$name}"/"$value"}
        done
    fi
    if [[ $text == *"\${"* ]]; then
        echo "a placeholder of ${1##*/} has no secret in $SECRETS_DIR" >&2
        exit 1
    fi
    printf '%s' "$text"
}

# The id of the client whose clientId is $1 in client_id, empty if there is none. The query
# is exact unless search=true (keycloak/keycloak@15b637c
# services/src/main/java/org/keycloak/services/resources/admin/ClientsResource.java
# getClients); the name is checked here too.
find_client() {
    local rows id name
    rows=$(csv clients -r "$REALM" -q clientId="$1" --fields id,clientId)
    client_id=
    while IFS=, read -r id name; do
        if [ "$name" = "$1" ]; then
            client_id=$id
        fi
    done <<<"$rows"
}

# The admin's password through the environment, not the command line. Keycloak may still
# be starting (a restart rebuilds it): the login is tried for up to LOGIN_WAIT seconds.
admin=$(cat "$ADMIN_DIR/username")
admin_password=$(cat "$ADMIN_DIR/password")
waited=0
until refused=$(KC_CLI_PASSWORD=$admin_password kc config credentials --server "$KEYCLOAK_URL" \
    --realm master --user "$admin" 2>&1); do
    # A refused login will not come right by waiting: only an unreachable Keycloak is retried.
    case $refused in
    *"Invalid user credentials"*)
        echo "$refused" >&2
        exit 1
        ;;
    esac
    if [ "$waited" -ge "${LOGIN_WAIT:-300}" ]; then
        echo "no login to $KEYCLOAK_URL after ${waited}s: $refused" >&2
        exit 1
    fi
    sleep 5
    waited=$((waited + 5))
done

# The realm's owned fields (its frontendUrl: where browsers reach it; brute-force lockout),
# merged over the realm as it is: a realm representation's attributes replace all of the realm's, removing
# those it lacks (keycloak/keycloak@main
# model/storage-private/src/main/java/org/keycloak/storage/datastore/DefaultExportImportManager.java
# updateRealm), so `-m` reads the realm first and sends them all back with ours set. The path
# is the realm itself, under the admin root: no -r. No file: no attribute declared.
if [ -f "$REALM_FILE" ]; then
    kc_body "$(cat "$REALM_FILE")" update "realms/$REALM" -m
fi

# Tier groups are top-level: matched by path ("/<tier>"), so a subgroup named like a tier
# is not one.
declare -A group_of=() is_tier=() listed=()
groups=$(csv groups -r "$REALM" --fields id,path)
while IFS=, read -r id path; do
    [ -n "$id" ] && group_of[${path#/}]=$id
done <<<"$groups"
while read -r tier; do
    [ -n "$tier" ] || continue
    is_tier[$tier]=1
    if [ -z "${group_of[$tier]:-}" ]; then
        group_of[$tier]=$(kc create groups -r "$REALM" -s "name=$(json_string "$tier")" -i)
        echo "group $tier created"
    fi
done <"$TIERS_FILE"
if [ -z "${group_of[$MANAGED_GROUP]:-}" ]; then
    group_of[$MANAGED_GROUP]=$(kc create groups -r "$REALM" -s "name=$(json_string "$MANAGED_GROUP")" -i)
    echo "group $MANAGED_GROUP created"
fi
# The realm's other declared groups (the key administrators'): created if missing, nothing else.
while read -r group; do
    [ -n "$group" ] || continue
    if [ -z "${group_of[$group]:-}" ]; then
        group_of[$group]=$(kc create groups -r "$REALM" -s "name=$(json_string "$group")" -i)
        echo "group $group created"
    fi
done <"$GROUPS_FILE"

# A missing client is created from the import's representation (with service accounts on,
# Keycloak makes its user: ClientsResource createClient). An existing one: `update -m` reads
# it and merges the owned fields over it, objects deeply and arrays replaced, so an
# attribute beside PKCE stays (keycloak/keycloak@c7565de
# integration/client-cli/admin-cli/src/main/java/org/keycloak/client/admin/cli/commands/AbstractRequestCmd.java
# process; keycloak/keycloak@5470080
# integration/client-cli/admin-cli/src/main/java/org/keycloak/client/admin/cli/ReflectionUtil.java
# merge). Sent every run, the same values when nothing drifted.
while read -r client; do
    [ -n "$client" ] || continue
    find_client "$client"
    if [ -z "$client_id" ]; then
        body=$(filled "$CLIENTS_DIR/client.$client.json")
        kc_body "$body" create clients -r "$REALM"
        echo "client $client created"
    else
        body=$(filled "$CLIENTS_DIR/owned.$client.json")
        kc_body "$body" update "clients/$client_id" -r "$REALM" -m
    fi
done <"$CLIENTS_FILE"

# A service account's declared client roles (the import's clientRoles): granted if its direct
# role mappings lack one (a role held through a group or a composite is not looked for).
# The service-account user is made on demand if missing (keycloak/keycloak@7545749
# services/src/main/java/org/keycloak/services/resources/admin/ClientResource.java
# getServiceAccountUser).
while read -r client role_client role; do
    [ -n "$client" ] || continue
    find_client "$client"
    account=$(csv "clients/$client_id/service-account-user" -r "$REALM" --fields id)
    find_client "$role_client"
    [ -n "$client_id" ] || { echo "no client $role_client in $REALM" >&2; exit 1; }
    held=$(csv "users/$account/role-mappings/clients/$client_id" -r "$REALM" --fields name)
    granted=false
    while read -r name; do
        if [ "$name" = "$role" ]; then
            granted=true
        fi
    done <<<"$held"
    if [ "$granted" = false ]; then
        kc add-roles -r "$REALM" --uid "$account" --cid "$client_id" --rolename "$role"
        echo "client $client granted $role_client $role"
    fi
done <"$ROLES_FILE"

while read -r user tier email; do
    [ -n "$user" ] || continue
    listed[$user]=1
    id=$(csv users -r "$REALM" -q username="$user" -q exact=true --fields id)
    if [ -z "$id" ]; then
        # Read first (a missing file stops the script), and given with the user in one call:
        # a user is never left without its password.
        password=$(cat "$PASSWORDS_DIR/$user")
        [ -n "$password" ] || { echo "no password for $user" >&2; exit 1; }
        credentials="[{\"type\":\"password\",\"value\":$(json_string "$password"),\"temporary\":false}]"
        id=$(kc create users -r "$REALM" -s "username=$(json_string "$user")" -s enabled=true \
            -s "email=$(json_string "$email")" -s emailVerified=true -s "firstName=$(json_string "$user")" \
            -s "lastName=$(json_string "$tier")" -s "credentials=$credentials" -i)
        echo "user $user created"
    fi
    in_tier=false
    managed=false
    memberships=$(csv "users/$id/groups" -r "$REALM" --fields id,path)
    while IFS=, read -r group path; do
        [ -n "$group" ] || continue
        name=${path#/}
        if [ "$path" = "/$MANAGED_GROUP" ]; then
            managed=true
        elif [ "$path" = "/$tier" ]; then
            in_tier=true
        elif [[ $name != */* ]] && [ -n "${is_tier[$name]:-}" ]; then
            kc delete "users/$id/groups/$group" -r "$REALM"
            echo "user $user left $name"
        fi
    done <<<"$memberships"
    if [ "$in_tier" = false ]; then
        group=${group_of[$tier]}
        kc update "users/$id/groups/$group" -r "$REALM" -s "realm=$(json_string "$REALM")" \
            -s "userId=$(json_string "$id")" -s "groupId=$(json_string "$group")" -n
        echo "user $user joined $tier"
    fi
    if [ "$managed" = false ]; then
        group=${group_of[$MANAGED_GROUP]}
        kc update "users/$id/groups/$group" -r "$REALM" -s "realm=$(json_string "$REALM")" \
            -s "userId=$(json_string "$id")" -s "groupId=$(json_string "$group")" -n
    fi
done <"$USERS_FILE"

members=$(csv "groups/${group_of[$MANAGED_GROUP]}/members" -r "$REALM" -q first=0 -q max=-1 --fields id,username)
while IFS=, read -r id user; do
    if [ -n "$id" ] && [ -z "${listed[$user]:-}" ]; then
        kc delete "users/$id" -r "$REALM"
        echo "user $user deleted"
    fi
done <<<"$members"
