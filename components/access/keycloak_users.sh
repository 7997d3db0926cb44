#!/bin/bash
# Brings the realm's users in step with the stack file, through Keycloak's admin CLI.
#
# Runs in a Job of the pinned Keycloak image (its bash and kcadm.sh), after every change of
# the stack's users: a listed user missing from the realm is created with the generated
# password and joins its tier's group; a listed user in another tier's group leaves it; a
# user of the stack file (a member of MANAGED_GROUP, which every listed user joins) that the
# file no longer lists is deleted. Users outside that group (an administrator's own, and the
# self-service users an administrator puts in a tier group, issue 29) are left alone, and a
# password is set only when the user is created (a user may change it). Fails on the first error, so a
# `pulumi up` whose sync failed says so.
#
# kcadm.sh reads each `-s key=value` as JSON when it parses, so every string is quoted as
# JSON ("123" would become a number); names are DNS labels (no quotes, commas or spaces), so
# the csv output (no quoting with --noquotes) splits cleanly. Facts read in keycloak/keycloak
# integration/admin-cli at commits near 26.7 (docs/unverified.md): --config on every command
# (BaseAuthOptionsCmd), the admin password from KC_CLI_PASSWORD (BaseConfigCredentialsCmd),
# `create -i` printing the id (AbstractRequestCmd), `update ... -n` not reading first, and
# a group's members paged unless max is -1 (PaginationUtils).
#
# Environment: KEYCLOAK_URL, REALM, MANAGED_GROUP, ADMIN_DIR (files username, password), PASSWORDS_DIR
# (a file per user), USERS_FILE (lines "<user> <tier> <email>"), TIERS_FILE (a tier per
# line), KCADM (the CLI), KCADM_CONFIG (a writable file: the root filesystem is read-only).
set -euo pipefail

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
