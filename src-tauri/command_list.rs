// The app's commands, named once. `commands.rs` turns this list into the
// IPC handler, `build.rs` into the ACL manifest (an `allow-<command>`
// permission each) and into the permission set `app-commands` that
// capabilities/main.json grants; tests/commands.rs checks ui/src/api.ts
// calls exactly these. Add a command here and everything else follows.
festival_commands! {
    app_state,
    onboard,
    my_code,
    rooms,
    join_room,
    history,
    dm_history,
    send,
    send_dm,
    send_meetup,
    answer_meetup,
    retry,
    create_group,
    groups,
    send_group,
    invite_to_group,
    leave_group,
    group_history,
    mark_read,
    peers,
    mute,
    block,
    people_choices,
    viewing,
    search,
    announcements,
    verify,
    status,
    settings,
    save_settings,
    subscribe,
}
