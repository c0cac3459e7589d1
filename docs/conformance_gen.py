#!/usr/bin/env python3
"""Regenerates docs/CONFORMANCE.md from the requirement ids of shared/notes/requirements.md
and the status table S below (kept here so the document and its evidence stay in one place).

Usage (from the repository root): python3 docs/conformance_gen.py ../shared/notes/requirements.md
It writes docs/CONFORMANCE.md itself (do not redirect stdout into it) and prints a summary on
stderr. Every test it cites is checked: a `#[test]` (or `#[tokio::test]`) `fn <name>` must exist
in the cited file, else it stops with an error and writes nothing."""
import collections, os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = {'crypto': 'esession-crypto', 'wire': 'esession-wire', 'core': 'esession',
          'store': 'esession-store', 'xmpp': 'esession-xmpp', 'cli': 'esession-cli'}
CITED = []  # (crate, path, test name)


def P(crate, path, *names):
    """Cites tests: `crate: path name1, name2` (path inside crates/<crate>/)."""
    for n in names:
        CITED.append((crate, path, n))
    return f'{crate}: {path} ' + ', '.join(names)


def TP(module, *names):
    """Tests of the in-memory two-party harness, crates/esession/tests/two_party/<module>.rs."""
    return P('core', f'tests/two_party/{module}.rs', *names)


def J(*parts):
    return '; '.join(parts)


TR = P('core', 'tests/transcripts.rs', 'replays_the_4msg_transcript_byte_for_byte',
       'replays_the_retained_secret_and_password_transcript_byte_for_byte')
ADDON = {'PKP': 'not yet (add-on issue: XEP-0189)', 'OFF': 'not yet (add-on issue: XEP-0187)',
         'ARC': 'not yet (add-on issue: XEP-0136)'}
GAJIM = 'issue 6 (Gajim compatibility profile)'

S = {
# id: (status, proof)
# ---- common definitions
'CMN-01': ('done', J(P('crypto', 'src/encoding.rs', 'mpi_strips_only_leading_zero_octets'),
    P('crypto', 'tests/modp_groups.rs', 'leading_zero_octets_are_stripped_from_e_and_from_the_shared_value'),
    P('wire', 'src/keyvalue.rs', 'strips_leading_zero_octets_on_input_cmn_01', 'serializes_with_leading_zeros_stripped'), TR)),
'CMN-02': ('done', J(P('wire', 'src/util.rs', 'base64_skips_white_space_inside_values_cmn_02', 'base64_rejects_garbage_missing_padding_and_trailing_bits_cmn_02'),
    P('wire', 'src/encrypted.rs', 'rejects_bad_base64_cmn_02'),
    TP('tamper_negotiation', 'every_field_of_the_offer_is_protected', 'every_field_of_the_answer_is_protected') + ' (non-Base64 values fail the step; white space inside values is skipped)')),
'CMN-03': ('done', J(P('crypto', 'tests/esession_transcripts.rs', 'replays_4msg_transcript_without_retained_secret', 'replays_4msg_transcript_with_retained_secret_and_password'), TR)),
'CMN-04': ('done', J(P('crypto', 'src/kdf.rs', 'aes128_cipher_key_is_rightmost_16_bytes_and_mac_key_is_all_32', 'whirlpool_keys_are_64_bytes_and_cipher_keys_rightmost'), TR)),
'CMN-05': ('done', J(P('crypto', 'src/cipher.rs', 'matches_blockwise_definition_for_every_cipher', 'counter_wraps_inside_one_message'),
    P('crypto', 'src/encoding.rs', 'counter_wraps_modulo_2_pow_128', 'partial_blocks_consume_a_whole_counter_value'),
    P('crypto', 'tests/known_answers.rs', 'aes_ctr_matches_sp800_38a_f5', 'aes_ctr_decrypts_published_ciphertext_block_by_block_across_calls'),
    TR + ' (counters across identities and stanzas)')),
'CMN-06': ('done', J(P('wire', 'src/normalize.rs', 'normalizes_the_cmn_06_example', 'normalizes_required_as_start_end_pair_cmn_06', 'sorts_attributes_label_type_var_in_byte_order_cmn_06', 'escapes_text_like_canonical_xml_cmn_06', 'drops_white_space_between_elements_and_keeps_leaf_text_cmn_06'),
    P('wire', 'tests/vectors.rs', 'form_content_matches_the_vectors_cmn_06_esn_18_esn_28_esn_38'), TR)),
'CMN-07': ('done', J('randomness only through the purpose-tagged core `Randomness` trait; the CLI seeds ChaCha20 from getrandom; 16-byte nonces (Config::nonce_len)',
    TP('normal', 'thread_ids_are_32_hex_digits_and_new_per_session', 'equal_plaintexts_encrypt_differently', 'different_seeds_give_different_sas_for_different_sessions'),
    P('crypto', 'src/dh.rs', 'generated_exponents_have_requested_size'),
    TP('rekey', 'the_session_initiator_rekeys_and_both_keep_talking') + ' (a fresh x per rekey)')),
'CMN-08': ('done', J('keys in zeroize-on-drop types (SecretBytes, aes/hmac zeroize features); DhKeyPair::agree consumes x; wiped key sets and ended sessions are dropped at once',
    P('crypto', 'src/secret.rs', 'zeroize_wipes_contents', 'debug_output_never_shows_secret_bytes'),
    P('crypto', 'src/dh.rs', 'debug_of_key_pair_hides_exponent'),
    P('core', 'src/session/tests.rs', 'new_1_after_two_own_rekeys_uses_set_1_and_wipes_set_0'),
    P('store', 'tests/store.rs', 'secrets_never_reach_the_disk_in_clear'))),
# ---- XEP-0201 threads
'THR-01': ('done', TP('normal', 'send_text_puts_only_thread_c_and_amp_in_clear') + ' (every message carries the session\'s <thread/>)'),
'THR-02': ('done', TP('normal', 'replies_reuse_the_thread', 'thread_ids_are_32_hex_digits_and_new_per_session')),
'THR-03': ('n/a', 'a MAY: we never create offshoot threads; a `parent` attribute is ignored'),
'THR-04': ('done', J('every session we start mints a fresh ThreadID used on all its messages; a chat with an unknown ThreadID or none never joins an existing session (the manager keys sessions by peer and thread)',
    TP('normal', 'thread_ids_are_32_hex_digits_and_new_per_session'),
    TP('tamper_messages', 'an_altered_clear_thread_reaches_no_session'),
    TP('misuse', 'stanzas_without_thread_or_from_are_ignored'))),
'THR-05': ('done', J('established sessions (and their threads) never expire by time: ' + TP('timeouts', 'established_sessions_never_expire'),
    'unavailable presence from the peer\'s full JID ends the session by default, taking the MAY branch of SSN-16 (a conforming peer terminates before going offline, ESN-45, so its keys are gone): '
    + TP('stanza_kinds', 'unavailable_presence_from_the_peer_ends_the_session', 'unavailable_presence_from_another_resource_changes_nothing')
    + ', ' + P('xmpp', 'tests/prosody.rs', 'peer_going_offline_ends_the_session'),
    'THR-05\'s SHOULD NOT (keep the thread) is available as Config::end_session_on_peer_unavailable = false: '
    + TP('stanza_kinds', 'configured_to_assume_continuation_unavailable_presence_keeps_the_session'))),
'THR-06': ('done', J(TP('normal', 'thread_ids_are_32_hex_digits_and_new_per_session', 'send_text_puts_only_thread_c_and_amp_in_clear'),
    TP('tamper_messages', 'an_altered_clear_thread_reaches_no_session') + ' (compared exactly, never encrypted)')),
'THR-07': ('n/a', 'UI grouping of groupchat, normal and archived messages: the CLI has one-to-one chat only, no groupchat or archive view'),
# ---- XEP-0155 stanza session negotiation
'SSN-01': ('done', J(TP('normal', 'the_offer_carries_the_amp_drop_rule_and_no_body'), P('wire', 'src/form.rs', 'parses_an_ssn_offer_with_typed_fields_ssn_01'), TR + ' (stanza 1)')),
'SSN-02': ('done', J(P('wire', 'src/form.rs', 'parses_booleans_strictly_ssn_02', 'rejects_invalid_boolean_values_ssn_02', 'as_bool_requires_exactly_one_value_ssn_02'),
    P('core', 'src/ssn.rs', 'legacy_otr_true_means_mustnot'),
    P('core', 'src/session/control.rs', 'recognises_a_renegotiation_request_and_the_fields_it_names', 'recognises_continue_and_rejects_an_empty_resource'),
    TP('misuse', 'an_unknown_optional_field_is_not_refused_at_once'))),
'SSN-03': ('partial', 'missing: the server-archiving check (ARC-07) before offering or accepting logging=mustnot comes with the XEP-0136 add-on issue; until then `mustnot` is offered second (Config::logging, AMB-59) and accepted when the peer picks it'),
'SSN-04': ('done', TP('normal', 'the_offer_carries_the_amp_drop_rule_and_no_body')),
'SSN-05': ('done', J(TP('normal', 'no_negotiation_message_carries_a_body', 'replies_reuse_the_thread'), TR)),
'SSN-06': ('done', J(TR + ' (stanza 2 answers every required field)', TP('tamper_negotiation', 'every_field_of_the_answer_is_protected') + ' (a missing answer is refused)')),
'SSN-07': ('done', TP('misuse', 'rejecting_a_held_offer_sends_accept_0_and_alice_sees_declined')),
'SSN-08': ('done', J(TP('misuse', 'an_unknown_form_type_gets_service_unavailable', 'unknown_required_fields_get_feature_not_implemented_naming_all_of_them', 'not_acceptable_names_every_unusable_field'),
    P('core', 'src/ssn.rs', 'error_reply_lists_fields_and_uses_amb30_types'))),
'SSN-09': ('done', J('core: with Config::answer_only_subscribers an offer from a bare JID not reported subscribed (SessionManager::set_presence_subscription) is never answered automatically, not even with an error or a fresh offer (SSN-10): it waits for the user as Event::OfferReceived; Config::auto_accept = false holds every offer. Off by default (the core knows no roster unless fed)',
    TP('offers', 'a_strangers_offer_gets_nothing_until_the_user_accepts_then_it_establishes', 'a_subscribers_offer_is_answered_at_once_and_unsubscribing_holds_the_next', 'a_strangers_unacceptable_offer_gets_no_error_but_a_subscribers_does', 'a_strangers_delayed_offer_gets_no_fresh_offer', 'a_plain_offer_waits_for_the_user_when_policy_holds_offers', 'the_default_policy_answers_strangers_as_before'),
    TP('misuse', 'without_auto_accept_an_offer_waits_for_the_user_then_accept_establishes') + ', ' + TP('timeouts', 'an_offer_held_for_the_user_expires_too'),
    'adapter: esession-xmpp requests the roster at login and applies roster pushes (subscription from/both): ' + P('xmpp', 'src/roster.rs', 'the_roster_result_says_who_is_subscribed_to_our_presence', 'a_push_from_our_server_updates_and_is_answered', 'pushes_from_anyone_else_and_other_results_are_not_roster_updates')
    + ' (wiring in client.rs by inspection; blocked JIDs are not read: with XEP-0191 the server does not deliver their stanzas)',
    'CLI (REC policy-driven decisions): `chat` answers only its contact and subscribers, `listen --accept subscribers` likewise, `--accept none` declines only subscribers; `listen --accept any` (the default) answers anyone, as the user chose')),
'SSN-10': ('done', P('core', 'tests/stale_offer.rs', 'a_delayed_offer_gets_a_fresh_offer_on_a_new_thread_and_that_session_establishes', 'without_reoffering_a_delayed_offer_is_ignored')),
'SSN-11': ('done', TP('misuse', 'an_offer_to_a_bare_jid_binds_the_session_to_the_full_jid_that_answered', 'stanzas_from_another_resource_on_the_same_thread_are_ignored', 'an_answer_from_another_users_jid_is_ignored')),
'SSN-12': ('done', J('Alice refuses an answer choosing unoffered values with not-acceptable naming the fields (AMB-52) and forgets the attempt; accept=0 in message 3 cancels at Bob',
    TP('tamper_negotiation', 'every_field_of_the_answer_is_protected', 'every_field_of_the_completion_is_protected'),
    TP('stanza_kinds', 'an_answer_choosing_a_kind_that_was_not_offered_is_refused'))),
'SSN-13': ('done', J('under AMB-39: we never ask to move (MAY); an authenticated `continue` to another resource terminates the session and negotiates afresh with that resource',
    TP('renegotiation', 'continue_terminates_the_session_and_negotiates_afresh_with_the_new_resource', 'continue_to_the_same_resource_changes_nothing'),
    P('core', 'src/session/control.rs', 'recognises_continue_and_rejects_an_empty_resource'))),
'SSN-14': ('done', J('under AMB-39: we never renegotiate; a renegotiation request is answered renegotiate=0 with the values in force',
    TP('renegotiation', 'a_renegotiation_is_answered_renegotiate_0_and_the_agreed_parameters_stay', 'after_a_refused_renegotiation_new_parameters_come_from_a_fresh_session', 'clear_renegotiation_and_continue_forms_are_dropped_unanswered'),
    P('core', 'src/session/control.rs', 'recognises_a_renegotiation_request_and_the_fields_it_names'))),
'SSN-15': ('done', J(TP('normal', 'terminate_and_ack_end_both_sides_and_later_sends_fail', 'simultaneous_terminates_end_both_sides'), TR)),
'SSN-16': ('done', J('by default we assume the peer does not continue (the MAY branch) and send the encrypted terminate form (Config::end_session_on_peer_unavailable); a new session always gets a new ThreadID',
    TP('stanza_kinds', 'unavailable_presence_from_the_peer_ends_the_session', 'encrypted_unavailable_presence_is_delivered_then_ends_the_session', 'unavailable_presence_from_another_resource_changes_nothing', 'configured_to_assume_continuation_unavailable_presence_keeps_the_session'),
    P('xmpp', 'tests/prosody.rs', 'peer_going_offline_ends_the_session'),
    P('cli', 'tests/prosody_cli.rs', 'chat_pings_and_sees_the_contact_go_offline'))),
'SSN-17': ('done', J('sessions are reused until terminated (one session carries a whole chat: ' + TP('normal', 'messages_flow_both_ways_with_their_bodies') + ')',
    'terminated when going offline (ESN-45): ' + TP('normal', 'terminate_all_ends_every_session_with_the_encrypted_terminate_form') + ', ' + P('xmpp', 'tests/prosody.rs', 'disconnect_ends_sessions_with_the_terminate_form')
    + ', ' + P('cli', 'tests/prosody_cli.rs', 'interrupted_listen_ends_the_session_with_the_terminate_form'),
    'directed presence (MAY) as the application sends it (the CLI sends it in sessions that agreed presence)')),
'SSN-18': ('done', J('forms are parsed into typed values; Event/SessionInfo carry no peer titles or labels and the CLI prints its own text for every field',
    TP('offers', 'swapped_labels_on_security_and_logging_never_reach_an_event') + ' (a title and swapped labels in the offer, then in the answer: no event of either side shows them)')),
'SSN-19': ('done', J('esession-xmpp disco.rs FEATURES (urn:xmpp:ssn, the XEP-0116 and XEP-0200 namespaces) in disco#info and caps',
    P('xmpp', 'src/client.rs', 'ping_and_disco_info_requests_get_our_answer') + ' (asserts the XEP-0116 feature of that list)')),
# ---- XEP-0200 stanza encryption
'ENC-01': ('done', J('message, presence and iq as agreed in `stanzas` (CLI --stanzas)',
    TP('stanza_kinds', 'a_directed_presence_makes_the_round_trip_encrypted', 'an_iq_get_and_its_result_make_the_round_trip', 'broadcast_presence_is_refused_by_the_api_and_nothing_is_sent', 'a_clear_broadcast_presence_from_the_peer_passes_through_untouched', 'a_kind_not_agreed_is_refused_and_nothing_is_sent', 'an_encrypted_iq_when_iq_was_not_agreed_ends_the_session_and_is_refused'),
    P('xmpp', 'tests/prosody.rs', 'encrypted_presence_and_iq_through_prosody'),
    P('xmpp', 'src/client.rs', 'encrypted_presence_and_iq_convert_for_tokio_xmpp_with_their_c'))),
'ENC-02': ('done', J(TP('normal', 'send_text_puts_only_thread_c_and_amp_in_clear'),
    TP('stanza_kinds', 'an_iq_error_keeps_the_error_and_its_condition_clear_and_hides_the_rest'),
    TP('misuse', 'an_encrypted_error_message_keeps_the_session_in_step'),
    P('xmpp', 'tests/prosody.rs', 'encrypted_presence_and_iq_through_prosody'))),
'ENC-03': ('done', J(TP('stanza_kinds', 'two_top_level_c_end_the_session', 'an_inner_c_outside_an_error_stanza_ends_the_session', 'an_iq_error_keeps_the_error_and_its_condition_clear_and_hides_the_rest', 'an_iq_error_reordered_in_transit_still_decrypts', 'the_contents_of_the_two_c_of_an_iq_error_cannot_be_swapped'),
    TP('tamper_messages', 'a_second_c_element_delivers_nothing_and_ends_the_session'),
    'our reading of the [IMPL] counter order: the top-level <c/> is counted first, then the one inside <error/>, whatever the document order (see "Readings beyond requirements.md")')),
'ENC-04': ('done', J('Config::pad_to_multiple', TP('normal', 'padding_hides_the_length_of_short_messages_and_is_removed_at_the_receiver'))),
'ENC-05': ('done', J(P('crypto', 'src/compress.rs', 'none_is_identity', 'zlib_stream_spans_stanzas_with_sync_flush', 'zlib_round_trips_any_sequence', 'decompression_is_bounded', 'refuses_lzw_as_unsupported'),
    TP('matrix', 'every_cipher_hash_and_compression_negotiates_and_carries_messages') + ' (zlib end to end; lzw, a MAY, is not implemented)')),
'ENC-06': ('done', J(TR, P('crypto', 'src/cipher.rs', 'none_cipher_leaves_data_and_advances_by_one'), P('crypto', 'tests/known_answers.rs', 'aes_ctr_matches_sp800_38a_f5'),
    TP('matrix', 'every_cipher_hash_and_compression_negotiates_and_carries_messages'))),
'ENC-07': ('done', J(TR, TP('normal', 'send_text_puts_only_thread_c_and_amp_in_clear'))),
'ENC-08': ('done', J(TP('rekey', 'two_keys_received_are_reported_as_new_2_then_nothing', 'the_session_initiator_rekeys_and_both_keep_talking', 'a_tampered_new_fails_the_mac'),
    P('wire', 'src/encrypted.rs', 'accepts_only_canonical_positive_new_counts_enc_08'))),
'ENC-09': ('done', J(TR, P('wire', 'src/encrypted.rs', 'parses_data_and_mac_and_computes_m_content_enc_09', 'm_content_follows_received_order_amb_24_amb_49'),
    P('wire', 'tests/vectors.rs', 'm_content_matches_the_vectors_for_every_encrypted_stanza_enc_09_amb_49'))),
'ENC-10': ('done', J(P('wire', 'src/encrypted.rs', 'rekey_only_content_has_no_data_but_a_mac_enc_10', 'serializes_data_key_new_old_then_mac_enc_10_amb_24'),
    TP('rekey', 'the_session_initiator_rekeys_and_both_keep_talking') + ' (rekey-only stanza: no <data/>, its MAC checked at the counter before the +1, worked out from the wire)',
    TP('stanza_kinds', 'a_childless_presence_carries_a_c_with_only_a_mac'))),
'ENC-11': ('done', J(TP('rekey', 'peer_new_1_after_two_own_rekeys_selects_set_1_and_wipes_set_0'),
    P('core', 'src/session/tests.rs', 'new_1_after_two_own_rekeys_uses_set_1_and_wipes_set_0', 'a_new_beyond_our_newest_set_is_unauthenticated'))),
'ENC-12': ('done', J(TP('tamper_messages', 'a_flipped_bit_in_data_delivers_nothing_and_ends_the_session', 'a_flipped_bit_in_the_mac_delivers_nothing_and_ends_the_session', 'a_replayed_stanza_is_delivered_once_then_ends_the_session', 'swapped_stanzas_deliver_nothing_and_end_the_session', 'a_dropped_stanza_makes_the_next_one_end_the_session'),
    TP('stanza_kinds', 'a_tampered_presence_delivers_nothing_and_ends_the_session', 'a_tampered_iq_delivers_nothing_ends_the_session_and_is_refused'),
    P('crypto', 'src/hash.rs', 'mac_key_verify_rejects_flipped_bit_and_wrong_length') + ' (constant-time MacKey::verify)')),
'ENC-13': ('done', J(TP('tamper_messages', 'content_rejected_after_a_valid_mac_ends_the_session_without_a_stream_error'),
    P('wire', 'src/xml.rs', 'parses_a_decrypted_fragment_with_the_default_namespace_enc_13', 'a_fragment_cannot_close_the_wrapper_enc_13'))),
'ENC-14': ('done', J(TP('rekey', 'rekey_before_rekey_freq_stanzas_is_an_api_error') + ' (freq 50, rekey at 10 -> Error::RekeyTooSoon; AMB-55 counting)',
    'we rekey at half the block limit and after 10 idle minutes: ' + TP('rekey', 'a_rekey_is_piggy_backed_once_half_the_block_limit_is_used', 'an_idle_session_is_rekeyed_by_the_timer_once'))),
'ENC-15': ('done', J(P('crypto', 'src/kdf.rs', 'rekey_labels_depend_on_who_sent_key'),
    P('core', 'src/session/tests.rs', 'rekey_keys_use_the_labels_of_who_sent_key') + ' (K = d^x recomputed independently, for a rekey by either session role)',
    TP('rekey', 'the_session_initiator_rekeys_and_both_keep_talking', 'the_session_responder_rekeys_and_both_keep_talking'),
    P('crypto', 'src/dh.rs', 'private_exponent_bounds_are_checked'))),
'ENC-16': ('done', J(TP('rekey', 'the_session_initiator_rekeys_and_both_keep_talking', 'the_session_responder_rekeys_and_both_keep_talking') + ' (the <key/> stanza verifies under the old MAC key, published later, and the next ones do not)',
    TP('rekey', 'a_rekey_is_piggy_backed_once_half_the_block_limit_is_used', 'a_tampered_key_fails_the_mac'))),
'ENC-17': ('done', J(TP('rekey', 'a_stanza_under_the_old_key_is_accepted_30_s_after_a_rekey', 'a_stanza_under_the_old_key_is_rejected_61_s_after_a_rekey', 'expired_key_sets_go_by_timer_and_their_mac_key_is_then_published', 'a_stale_key_after_the_timer_destroyed_it_ends_the_session', 'concurrent_rekeys_with_stanzas_in_flight_both_ways'),
    '[IMPL] at most 8 unanswered key sets: ' + TP('rekey', 'at_most_eight_key_sets_wait_for_an_answer'))),
'ENC-18': ('done', J(P('core', 'src/session/tests.rs', 'an_authentic_key_outside_1_and_p_minus_1_ends_the_session_and_changes_nothing') + ' (e = 0, 1, p-1, p)',
    TP('rekey', 'concurrent_rekeys_with_stanzas_in_flight_both_ways', 'peer_new_1_after_two_own_rekeys_selects_set_1_and_wipes_set_0'))),
'ENC-19': ('done', J('limit Config::rekey_block_limit (default 2^32, both directions, AMB-28; lowered in tests)',
    TP('rekey', 'a_rekey_is_piggy_backed_once_half_the_block_limit_is_used', 'a_stanza_that_would_reach_the_limit_goes_after_a_rekey_only_stanza', 'keys_used_up_with_rekeying_barred_terminate_the_session', 'an_iq_error_that_would_reach_the_block_limit_goes_after_a_rekey_only_stanza', 'an_idle_session_is_rekeyed_by_the_timer_once', 'idle_rekey_can_be_switched_off'))),
'ENC-20': ('done', J('old MAC keys are published in <old/> once safe (checked against MACs the peer really sent), never inside the 60 s window, each once; received <old/> are ignored',
    TP('rekey', 'expired_key_sets_go_by_timer_and_their_mac_key_is_then_published', 'peer_new_1_after_two_own_rekeys_selects_set_1_and_wipes_set_0', 'the_session_initiator_rekeys_and_both_keep_talking', 'received_old_keys_are_ignored', 'a_tampered_old_fails_the_mac', 'the_terminate_form_carries_the_mac_keys_safe_to_publish'))),
'ENC-21': ('n/a', 'we store no session content at all, whatever `logging` says: the core has no content storage, the trust store holds keys and secrets only, the CLI keeps no history; server-side archiving (ARC-08) comes with the XEP-0136 add-on issue'),
# ---- XEP-0217 simplified negotiation
'SIM-01': ('done', J(TR + ' (stanza 1 has every SIM-01 field)', TP('normal', 'the_offer_carries_the_amp_drop_rule_and_no_body'), TP('pubkeys', 'keyless_offers_are_unchanged_and_carry_no_sign_algs'))),
'SIM-02': ('done', J(TP('misuse', 'a_simplified_responder_refuses_an_aes256_only_offer_naming_crypt_algs', 'an_offer_with_only_unknown_ciphers_gets_not_acceptable_naming_crypt_algs'),
    TP('stanza_kinds', 'an_offer_without_any_kind_the_responder_accepts_is_not_acceptable_on_stanzas'))),
'SIM-03': ('done', J(TR, TP('tamper_negotiation', 'every_field_of_the_offer_is_protected', 'every_field_of_the_answer_is_protected', 'every_field_of_the_completion_is_protected', 'every_field_of_the_final_message_is_protected'))),
'SIM-04': ('done', J('DH, aes128-ctr, sha256, HMAC and sas28x5 are in the suite (full XEP-0116 too); a responder without 3-message support or keys answers as SIM-04 [IMPL] says',
    TP('misuse', 'a_three_message_offer_gets_feature_not_implemented_naming_dhkeys'),
    TP('three_message', 'a_four_message_responder_refuses_a_real_three_message_offer'),
    TP('tamper_negotiation', 'every_field_of_the_offer_is_protected') + ' (init_pubkey/resp_pubkey without `none` -> not-acceptable on the field)')),
# ---- XEP-0116 full negotiation
'ESN-01': ('done', J('esession-xmpp disco.rs advertises the XEP-0116 namespace (disco#info and caps) and reads the contact\'s',
    P('xmpp', 'src/client.rs', 'ping_and_disco_info_requests_get_our_answer'),
    P('xmpp', 'tests/prosody.rs', 'contact_without_esession_support', 'conversation_retained_secret_and_no_plaintext_on_server'))),
'ESN-02': ('done', J('the adapter checks disco#info of a known online resource before offering (ClientError::NoEsessionSupport); the offer\'s AMP rule keeps it out of offline storage; the CLI never falls back to clear text',
    P('xmpp', 'tests/prosody.rs', 'contact_without_esession_support'), 'offline sessions (XEP-0187) come with the add-on issue')),
'ESN-03': ('done', J('Config::flow: 3-message for services, 4-message for clients; `none` never offered in, and refused from, a 3-message offer',
    TP('three_message', 'services_get_three_messages_and_clients_four', 'none_is_refused_in_a_three_message_offer'),
    TP('matrix', 'each_public_key_mode_in_each_flow'))),
'ESN-04': ('done', J(TR + ' (stanza 1)', TP('normal', 'the_offer_carries_the_amp_drop_rule_and_no_body'),
    TP('pubkeys', 'keyless_offers_are_unchanged_and_carry_no_sign_algs'),
    TP('three_message', 'three_messages_with_rsa_keys') + ' (3-message offer: dhkeys, no sas_algs)',
    TP('stanza_kinds', 'presence_and_iq_are_agreed_when_both_sides_allow_them') + ' (stanzas list-multi)')),
'ESN-05': ('done', J('every value of the matrix negotiates and carries stanzas; lzw (MAY) is not implemented and refused, sha1/md5 (NOT RECOMMENDED) refused',
    TP('matrix', 'every_cipher_hash_and_compression_negotiates_and_carries_messages', 'groups_1_2_5_14_negotiate', 'every_cipher_and_hash_negotiates_with_three_messages', 'each_public_key_mode_in_each_flow', 'none_cipher_needs_the_option_on_the_responder'),
    TP('slow_groups', 'slow_groups_15_to_18_negotiate_and_carry_messages'),
    TP('tamper_negotiation', 'every_field_of_the_offer_is_protected') + ' (sha1/md5, lzw, groups 3/4, rekey_freq 0 refused)',
    P('crypto', 'src/cipher.rs', 'names_round_trip'), P('crypto', 'src/hash.rs', 'parses_only_offered_hash_names'), P('crypto', 'src/sign.rs', 'accepts_amb18_aliases'))),
'ESN-06': ('done', J(TR, P('crypto', 'tests/esession_transcripts.rs', 'replays_4msg_transcript_without_retained_secret'), P('crypto', 'src/dh.rs', 'exponent_sizes_are_at_least_twice_strength_and_256'))),
'ESN-07': ('done', J('as SSN-09: nothing at all, not even an error, goes to a requester not subscribed to our presence when Config::answer_only_subscribers is set (the adapter feeds the roster)', TP('offers', 'a_strangers_offer_gets_nothing_until_the_user_accepts_then_it_establishes', 'a_subscribers_offer_is_answered_at_once_and_unsubscribing_holds_the_next', 'a_strangers_unacceptable_offer_gets_no_error_but_a_subscribers_does', 'a_strangers_delayed_offer_gets_no_fresh_offer', 'a_plain_offer_waits_for_the_user_when_policy_holds_offers', 'the_default_policy_answers_strangers_as_before'))),
'ESN-08': ('done', J(TP('misuse', 'a_three_message_offer_gets_feature_not_implemented_naming_dhkeys'), TP('three_message', 'a_four_message_responder_refuses_a_real_three_message_offer'))),
'ESN-09': ('done', J(TP('misuse', 'not_acceptable_names_every_unusable_field', 'an_offer_with_only_unknown_ciphers_gets_not_acceptable_naming_crypt_algs'), TP('matrix', 'none_cipher_needs_the_option_on_the_responder'))),
'ESN-10': ('done', J(TP('errors', 'a_refused_final_message_ends_the_responders_session'), TP('timeouts', 'an_unanswered_offer_expires_after_the_timeout', 'an_answered_offer_without_completion_expires_at_the_responder'),
    TP('pubkeys', 'hash_identification_with_an_unknown_fingerprint_terminates_and_retries_with_key') + ' (a fresh retry)')),
'ESN-11': ('done', J('Config::accept_plain_sessions (off by default) answers an offer without e2e, with the first of its none/c2s values, by a plain SSN accept (Event::PlainSessionAccepted); e2e offered always negotiates the ESession; held for the user like any offer (SSN-09)',
    TP('offers', 'an_offer_of_c2s_or_none_gets_a_plain_session_with_that_security_when_configured', 'an_offer_of_c2s_only_is_refused_by_default_naming_security', 'an_offer_with_e2e_never_becomes_a_plain_session', 'a_plain_offer_waits_for_the_user_when_policy_holds_offers'))),
'ESN-12': ('done', J(TR, TP('misuse', 'an_offer_of_a_group_the_responder_lacks_gets_not_acceptable_on_modp'), TP('three_message', 'bob_checks_the_range_of_e'),
    TP('stanza_kinds', 'the_responder_agrees_only_the_kinds_it_accepts') + ' (AMB-29 subset)')),
'ESN-13': ('done', J(TR + ' (C_A, C_B, d)', P('crypto', 'src/encoding.rs', 'responder_counter_flips_top_bit'), TP('three_message', 'three_messages_with_rsa_keys') + ' (3-message K at Bob)')),
'ESN-14': ('done', J(TR + ' (stanza 2)', TP('pubkeys', 'key_identification_with_rsa_authenticates_both_sides', 'mixed_identification_key_for_alice_none_for_bob'),
    TP('rekey', 'rekey_before_rekey_freq_stanzas_is_an_api_error') + ' (agreed rekey_freq = the larger value)')),
'ESN-15': ('done', J('4-message: message 2 goes at once (' + TR + ')', '3-message: Bob\'s answer leaves only with identity and mac appended: ' + TP('three_message', 'three_messages_with_rsa_keys'))),
'ESN-16': ('done', J(TR, P('crypto', 'src/kdf.rs', 'initiator_and_responder_keys_differ'))),
'ESN-17': ('done', J(TP('pubkeys', 'key_identification_with_rsa_authenticates_both_sides', 'key_identification_with_dsa_authenticates_both_sides', 'mixed_identification_key_for_alice_none_for_bob'),
    P('wire', 'src/keyvalue.rs', 'normalizes_to_the_spec_form_without_xmlns_esn_17'))),
'ESN-18': ('done', J(TR, P('wire', 'tests/vectors.rs', 'form_content_matches_the_vectors_cmn_06_esn_18_esn_28_esn_38'))),
'ESN-19': ('done', J(TR + ' (pubKey = "")', TP('pubkeys', 'key_identification_with_rsa_authenticates_both_sides'), P('core', 'src/negotiation/sigma.rs', 'an_untouched_signed_identity_opens_to_the_signers_key'))),
'ESN-20': ('done', J(P('core', 'src/negotiation/sigma.rs', 'an_untouched_signed_identity_opens_to_the_signers_key', 'a_flipped_signature_value_is_refused', 'another_key_with_the_original_signature_is_refused'),
    P('crypto', 'tests/known_answers.rs', 'rsa_sha256_signatures_from_openssl_verify_and_match_ours_byte_for_byte'),
    TP('pubkeys', 'key_identification_with_rsa_authenticates_both_sides', 'key_identification_with_dsa_authenticates_both_sides'))),
'ESN-21': ('done', J(TP('pubkeys', 'hash_identification_with_rsa_uses_the_stored_keys', 'hash_identification_with_dsa_uses_the_stored_keys', 'hash_is_preferred_once_the_peers_key_is_stored'),
    P('core', 'src/negotiation/sigma.rs', 'a_fingerprint_is_looked_up_and_a_changed_one_is_unknown'), P('wire', 'src/keyvalue.rs', 'identity_payload_with_fingerprint_amb_16'))),
'ESN-22': ('done', J(TR + ' (none: ID = CTR(KC, C, mac))', TP('matrix', 'every_cipher_and_hash_negotiates_with_three_messages'), P('core', 'src/negotiation/sigma.rs', 'the_wrong_presentation_for_the_method_is_refused'))),
'ESN-23': ('done', TP('three_message', 'three_messages_with_rsa_keys', 'three_messages_with_dsa_keys', 'three_messages_with_rsa_fingerprints', 'three_messages_with_dsa_fingerprints')),
'ESN-24': ('done', J(TR, TP('three_message', 'tampering_with_dhkeys_identity_or_mac_fails_the_negotiation'))),
'ESN-25': ('done', J(TP('tamper_negotiation', 'every_field_of_the_answer_is_protected'), TP('stanza_kinds', 'an_answer_choosing_a_kind_that_was_not_offered_is_refused'))),
'ESN-26': ('done', J(TP('tamper_negotiation', 'every_field_of_the_answer_is_protected') + ' (d out of range -> not-acceptable on dhkeys)', TP('three_message', 'tampering_with_dhkeys_identity_or_mac_fails_the_negotiation'))),
'ESN-27': ('done', J(TP('tamper_negotiation', 'every_field_of_the_final_message_is_protected'),
    TP('pubkeys', 'tampered_signed_identities_fail_with_feature_not_implemented', 'an_unknown_key_fails_the_negotiation_by_default', 'hash_identification_with_an_unknown_fingerprint_terminates_and_retries_with_key'),
    TP('three_message', 'tampering_with_dhkeys_identity_or_mac_fails_the_negotiation'))),
'ESN-28': ('done', J(TR, TP('pubkeys', 'tampered_sign_algs_in_the_offer_is_caught_by_mac_a'), P('wire', 'tests/vectors.rs', 'form_content_matches_the_vectors_cmn_06_esn_18_esn_28_esn_38'))),
'ESN-29': ('done', J(TR + ' (stanza 3)', TP('three_message', 'content_bundled_with_the_completion_is_delivered_after_the_identity', 'a_one_shot_completion_ends_the_session_at_once', 'content_cannot_be_bundled_with_four_messages'))),
'ESN-30': ('done', J(TR + ' (decoys, Config::rshash_decoys >= 2)', TP('normal', 'a_second_session_is_authenticated_by_the_retained_secret_and_the_first_is_not'),
    TP('mitm', 'replaying_alices_nonce_and_rshashes_gives_mallory_no_session_and_keeps_the_chain'))),
'ESN-31': ('done', TP('tamper_negotiation', 'every_field_of_the_completion_is_protected')),
'ESN-32': ('done', J(TP('tamper_negotiation', 'every_field_of_the_completion_is_protected'), TP('pubkeys', 'bob_refuses_an_unknown_fingerprint_from_alice', 'tampered_signed_identities_fail_with_feature_not_implemented'),
    TP('three_message', 'bundled_content_with_a_bad_identity_is_not_delivered'))),
'ESN-33': ('done', J(P('crypto', 'src/sas.rs', 'sas_of_zero_is_all_a', 'sas_of_max_value_is_9kiui', 'sas_uses_last_three_bytes_of_hash'), TR,
    TP('mitm', 'a_relaying_mallory_gets_both_sessions_but_the_sas_differ'))),
'ESN-34': ('done', J('SessionInfo::sas_reminder', TP('normal', 'confirming_the_sas_marks_the_next_session_verified_and_stops_the_reminder', 'a_one_sided_sas_confirmation_only_changes_that_side'))),
'ESN-35': ('done', J('secrets of the peer\'s bare JID, newest first, unexpired: ' + TP('normal', 'a_second_session_is_authenticated_by_the_retained_secret_and_the_first_is_not', 'a_fresh_party_cannot_claim_the_retained_secret_chain')
    + ', ' + TP('mitm', 'an_unattacked_second_session_is_authenticated_by_the_retained_secret', 'replaying_alices_nonce_and_rshashes_gives_mallory_no_session_and_keeps_the_chain'),
    'then (SHOULD) the unexpired secrets retained with every other JID, newest first, bounded to 256 (one HMAC each; negotiation/secrets.rs), through TrustStore::retained_secrets_of_other_peers (memory and SQLite stores); a match authenticates once proven (AMB-57), the new RS is stored under the JID in use, the old JID\'s secret stays: '
    + TP('shared_secrets', 'a_secret_retained_with_another_jid_authenticates_the_session', 'an_expired_secret_of_another_jid_is_not_used', 'only_the_newest_256_secrets_of_other_jids_are_searched'),
    P('store', 'tests/store.rs', 'retained_secrets_of_other_peers_are_newest_first_within_the_bounds_esn_35', 'behaves_exactly_like_memory_trust_store'))),
'ESN-36': ('done', J(TR + ' (password)', P('crypto', 'src/kdf.rs', 'final_secret_appends_only_present_secrets'))),
'ESN-37': ('done', TR),
'ESN-38': ('done', J(TR, P('wire', 'tests/vectors.rs', 'form_content_matches_the_vectors_cmn_06_esn_18_esn_28_esn_38'))),
'ESN-39': ('done', TR + ' (stanza 4)'),
'ESN-40': ('done', J(TR + ' (RS_new both sides)', TP('tamper_negotiation', 'a_tampered_final_message_does_not_break_the_retained_secret_chain'),
    P('xmpp', 'tests/prosody.rs', 'conversation_retained_secret_and_no_plaintext_on_server') + ' (stored, reopened from disk, proven)')),
'ESN-41': ('done', J(TR, TP('mitm', 'an_attacked_session_after_a_genuine_one_is_not_authenticated_by_the_retained_secret'))),
'ESN-42': ('done', J(TP('normal', 'confirming_the_sas_marks_the_next_session_verified_and_stops_the_reminder'), TP('mitm', 'a_verified_chain_does_not_carry_over_to_an_attacked_session'))),
'ESN-43': ('done', J(TR + ' (first stanza counter = C after ID)', TP('rekey', 'the_session_initiator_rekeys_and_both_keep_talking') + ' (counters worked out from the wire across identity, final keys and rekeys)')),
'ESN-44': ('done', J(TP('misuse', 'a_clear_body_on_an_established_thread_is_dropped'), TP('stanza_kinds', 'clear_children_beside_c_are_not_delivered', 'clear_children_beside_a_messages_c_are_not_delivered', 'a_kind_not_agreed_is_refused_and_nothing_is_sent'),
    TP('renegotiation', 'clear_renegotiation_and_continue_forms_are_dropped_unanswered'))),
'ESN-45': ('done', J('SessionManager::terminate sends the encrypted terminate form, with the <old/> keys safe to publish, and destroys the keys: ' + TP('normal', 'terminate_and_ack_end_both_sides_and_later_sends_fail') + ', ' + TP('rekey', 'the_terminate_form_carries_the_mac_keys_safe_to_publish') + ', ' + TR,
    'before going offline: SessionManager::terminate_all, called first by EsessionClient::disconnect (before unavailable presence), through which every CLI exit goes (chat /quit, end of input and Ctrl-C; listen on Ctrl-C or --count; send on every path): '
    + TP('normal', 'terminate_all_ends_every_session_with_the_encrypted_terminate_form') + ', ' + P('xmpp', 'tests/prosody.rs', 'disconnect_ends_sessions_with_the_terminate_form')
    + ', ' + P('cli', 'tests/prosody_cli.rs', 'interrupted_listen_ends_the_session_with_the_terminate_form'))),
'ESN-46': ('done', J(TR, TP('normal', 'terminate_and_ack_end_both_sides_and_later_sends_fail', 'simultaneous_terminates_end_both_sides', 'messages_in_flight_before_a_terminate_are_still_delivered'))),
'ESN-47': ('done', J(TP('normal', 'terminate_and_ack_end_both_sides_and_later_sends_fail'), TP('rekey', 'rekey_on_unknown_or_unestablished_sessions_is_refused'),
    TP('tamper_messages', 'sending_after_an_integrity_failure_fails'), P('xmpp', 'tests/prosody.rs', 'peer_going_offline_ends_the_session'))),
'ESN-48': ('done', J('a fresh DhKeyPair per negotiation from Randomness; agree() consumes it', TP('pubkeys', 'a_replayed_negotiation_is_refused'), TP('three_message', 'a_replayed_three_message_negotiation_is_refused'),
    TP('normal', 'different_seeds_give_different_sas_for_different_sessions'))),
'ESN-49': ('done', J(TP('pubkeys', 'an_unknown_key_fails_the_negotiation_by_default', 'the_dangerous_override_accepts_an_unknown_key_as_unauthenticated'),
    P('store', 'tests/store.rs', 'peer_keys_report_new_known_other_jid_and_changed_keys', 'peer_keys_through_the_core_trait_behave_like_memory_trust_store'), 'CLI: `esession trust` lists and verifies keys')),
'ESN-50': ('done', J(TP('pubkeys', 'a_known_key_under_another_jid_is_an_alert_with_its_petname'), P('store', 'tests/store.rs', 'peer_keys_report_new_known_other_jid_and_changed_keys', 'a_key_changed_to_one_known_elsewhere_reports_both'))),
'ESN-51': ('done', J(TP('pubkeys', 'a_changed_key_for_a_jid_is_an_alert_and_fails', 'a_jid_that_had_a_key_and_shows_none_is_an_alert', 'mallory_with_her_own_key_is_refused_by_both_victims'),
    P('store', 'tests/store.rs', 'peer_keys_report_new_known_other_jid_and_changed_keys'))),
'ESN-52': ('done', J(TP('pubkeys', 'the_petname_of_a_known_key_is_reported', 'a_known_key_under_another_jid_is_an_alert_with_its_petname'),
    P('cli', 'src/present.rs', 'key_alerts_show_the_petname_before_the_fingerprint'), 'petnames set with `esession trust petname`')),
'ESN-53': ('done', J('SecurityAlert::DisclosureNotNever is raised at establishment on both sides, before Event::Established, and the CLI shows it prominently; we agree `never` unless Config::accept_disclosure (responder) and offer only `never` unless Config::offer_disclosure (initiator): '
    + TP('offers', 'an_agreed_disclosure_enabled_alerts_both_users_at_once', 'disclosure_never_is_agreed_whenever_offered_and_raises_no_alert', 'an_initiator_refuses_a_disclosure_it_did_not_offer'),
    TP('misuse', 'a_responder_accepting_disclosure_answers_enabled_to_an_enabled_only_offer', 'without_accept_disclosure_an_enabled_only_offer_is_refused_naming_disclosure')
    + ', ' + TP('normal', 'events_of_a_clean_run_are_exactly_established') + ' (no alert with `never`)')),
'ESN-54': ('done', J('we have no disclosure mechanism, offer and prefer `never`; crypt_algs=none raises SecurityAlert::NoConfidentiality',
    TP('misuse', 'a_responder_accepting_disclosure_still_prefers_never', 'without_accept_disclosure_an_enabled_only_offer_is_refused_naming_disclosure'),
    TP('matrix', 'every_cipher_hash_and_compression_negotiates_and_carries_messages', 'none_cipher_needs_the_option_on_the_responder', 'none_cipher_is_not_offered_without_the_option'))),
'ESN-55': ('done', J(P('crypto', 'tests/known_answers.rs', 'rsa_sha256_signatures_from_openssl_verify_and_match_ours_byte_for_byte', 'dsa_sha256_signatures_from_openssl_verify_including_digest_truncation'),
    P('crypto', 'src/sign.rs', 'rejects_small_or_huge_rsa_moduli', 'rejects_malformed_dsa_keys'),
    P('wire', 'src/keyvalue.rs', 'parses_the_spec_form_rsa_key_esn_55', 'parses_and_serializes_dsa_keys_with_optional_parts_esn_55'),
    TP('pubkeys', 'key_identification_with_rsa_authenticates_both_sides', 'key_identification_with_dsa_authenticates_both_sides', 'an_unknown_key_fails_the_negotiation_by_default'),
    P('core', 'src/negotiation/sigma.rs', 'an_altered_modulus_or_exponent_is_refused'))),
# ---- resolutions of ambiguities
'AMB-01': ('done', J(P('core', 'src/ssn.rs', 'legacy_otr_true_means_mustnot'), 'the responder maps an `otr` field')),
'AMB-02': ('done', J(TR + ' (`disclosure` in every offer)', TP('misuse', 'without_accept_disclosure_an_enabled_only_offer_is_refused_naming_disclosure'))),
'AMB-03': ('done', J('ver 1.0 only (a 1.2/1.3 compat flag would belong to the Gajim profile, ' + GAJIM + ')', TP('tamper_negotiation', 'every_field_of_the_offer_is_protected') + ' (1.3/1.2 -> not-acceptable on ver)')),
'AMB-04': ('done', J(TR + ' (<init/> for message 4, feature-neg for the rest)', 'received either way: ' + TP('offers', 'message_4_in_a_feature_neg_wrapper_is_accepted', 'messages_2_and_3_in_an_init_wrapper_are_accepted_but_an_offer_is_not'))),
'AMB-05': ('done', J(TR + ' (namespaces byte for byte)', P('xmpp', 'src/client.rs', 'ping_and_disco_info_requests_get_our_answer'))),
'AMB-06': ('done', P('crypto', 'src/dh.rs', 'private_exponent_bounds_are_checked', 'public_value_range_check_rejects_0_1_p_minus_1_and_p')),
'AMB-07': ('done', J(TP('three_message', 'three_messages_with_rsa_keys') + ' (e in dhkeys, no dhhashes)', TP('misuse', 'a_three_message_offer_gets_feature_not_implemented_naming_dhkeys'))),
'AMB-08': ('done', J(TR, TP('rekey', 'the_session_initiator_rekeys_and_both_keep_talking') + ' (first block C, no resets, across rekeys)')),
'AMB-09': ('done', P('crypto', 'src/encoding.rs', 'partial_blocks_consume_a_whole_counter_value')),
'AMB-10': ('done', J(P('crypto', 'src/encoding.rs', 'counter_bytes_are_fixed_width_even_with_zero_top_octet', 'rejects_counter_longer_than_block'), TR)),
'AMB-11': ('done', TR),
'AMB-12': ('done', J(P('crypto', 'src/kdf.rs', 'aes128_cipher_key_is_rightmost_16_bytes_and_mac_key_is_all_32', 'whirlpool_keys_are_64_bytes_and_cipher_keys_rightmost'), TR)),
'AMB-13': ('done', J('negotiation K = HASH(MPI(g^xy)) (' + TR + '); rekey K = raw d^x',
    P('core', 'src/session/tests.rs', 'rekey_keys_use_the_labels_of_who_sent_key'), P('crypto', 'src/kdf.rs', 'rekey_labels_depend_on_who_sent_key'))),
'AMB-14': ('done', P('crypto', 'tests/modp_groups.rs', 'leading_zero_octets_are_stripped_from_e_and_from_the_shared_value')),
'AMB-15': ('done', P('wire', 'src/normalize.rs', 'quotes_attributes_with_double_quotes_cmn_06_amb_15', 'form_content_concatenates_children_and_skips_excluded_fields_amb_15', 'normalizes_required_as_start_end_pair_cmn_06')),
'AMB-16': ('done', J(P('wire', 'src/keyvalue.rs', 'identity_payload_with_fingerprint_amb_16'), TP('pubkeys', 'hash_identification_with_rsa_uses_the_stored_keys'),
    P('core', 'src/negotiation/sigma.rs', 'a_fingerprint_is_looked_up_and_a_changed_one_is_unknown'))),
'AMB-17': ('done', J('identities are opened with the wire parser that accepts both forms and normalizes to the spec form',
    P('wire', 'src/keyvalue.rs', 'parses_gajims_bare_rsa_key_value_amb_17', 'identity_payload_accepts_explicit_xmlns_and_the_bare_gajim_key_amb_17_amb_61', 'normalizes_to_the_spec_form_without_xmlns_esn_17'))),
'AMB-18': ('done', J(P('crypto', 'src/sign.rs', 'accepts_amb18_aliases'), TP('pubkeys', 'key_identification_with_rsa_authenticates_both_sides') + ' (0116\'s strings emitted)')),
'AMB-19': ('done', J(P('crypto', 'tests/known_answers.rs', 'rsa_sha256_signatures_from_openssl_verify_and_match_ours_byte_for_byte', 'dsa_sha256_signatures_from_openssl_verify_including_digest_truncation'),
    P('core', 'src/negotiation/sigma.rs', 'an_untouched_signed_identity_opens_to_the_signers_key'))),
'AMB-20': ('done', P('crypto', 'src/kdf.rs', 'final_secret_appends_only_present_secrets')),
'AMB-21': ('done', J(P('crypto', 'src/sas.rs', 'sas_of_zero_is_all_a', 'small_values_are_padded_on_the_left', 'sas_uses_last_three_bytes_of_hash'), TR)),
'AMB-22': ('done', J(P('crypto', 'src/dh.rs', 'refuses_elliptic_groups_3_and_4'), TP('misuse', 'an_offer_of_only_groups_3_and_4_gets_not_acceptable_on_modp'))),
'AMB-23': ('partial', J('online rule done: ' + TP('normal', 'send_text_puts_only_thread_c_and_amp_in_clear') + ', ' + TR + ' (match-resource other on messages)',
    'the offline half (no rule, full JID) comes with XEP-0187 (add-on issue)')),
'AMB-24': ('done', P('wire', 'src/encrypted.rs', 'm_content_follows_received_order_amb_24_amb_49', 'serializes_data_key_new_old_then_mac_enc_10_amb_24')),
'AMB-25': ('done', J(TP('rekey', 'the_session_initiator_rekeys_and_both_keep_talking') + ' (the rekey-only stanza\'s MAC verifies at the counter before the +1, worked out from the wire)',
    TP('stanza_kinds', 'a_childless_presence_carries_a_c_with_only_a_mac'))),
'AMB-26': ('done', J(TP('stanza_kinds', 'presence_and_iq_are_refused_when_several_sessions_could_carry_them', 'unthreaded_session_names_the_one_session_that_carries_a_kind', 'a_childless_presence_carries_a_c_with_only_a_mac'),
    P('xmpp', 'tests/prosody.rs', 'encrypted_presence_and_iq_through_prosody'))),
'AMB-27': ('done', J(P('crypto', 'src/dh.rs', 'public_value_range_check_rejects_0_1_p_minus_1_and_p'), P('core', 'src/session/tests.rs', 'an_authentic_key_outside_1_and_p_minus_1_ends_the_session_and_changes_nothing'))),
'AMB-28': ('done', TP('rekey', 'keys_used_up_with_rekeying_barred_terminate_the_session', 'a_rekey_is_piggy_backed_once_half_the_block_limit_is_used', 'an_iq_error_that_would_reach_the_block_limit_goes_after_a_rekey_only_stanza')),
'AMB-29': ('done', J(TP('stanza_kinds', 'presence_and_iq_are_agreed_when_both_sides_allow_them', 'the_responder_agrees_only_the_kinds_it_accepts', 'an_answer_choosing_a_kind_that_was_not_offered_is_refused'),
    P('wire', 'src/form.rs', 'accepts_multi_valued_untyped_fields_in_answers_amb_29'))),
'AMB-30': ('done', J(P('core', 'src/ssn.rs', 'error_reply_lists_fields_and_uses_amb30_types'), TP('misuse', 'an_offer_with_only_unknown_ciphers_gets_not_acceptable_naming_crypt_algs', 'a_three_message_offer_gets_feature_not_implemented_naming_dhkeys'))),
'AMB-31': ('done', J('core negotiation::ranked (a default value first, then option order)', TP('tamper_negotiation', 'every_field_of_the_offer_is_protected') + ' (reversed `logging` options: Bob takes the first)')),
'AMB-32': ('done', P('wire', 'src/form.rs', 'accepts_multi_valued_hidden_fields_amb_32_amb_33')),
'AMB-33': (ADDON['OFF'], 'XEP-0187 `signs` (the wire form already accepts multi-valued hidden fields)'),
'AMB-34': (ADDON['OFF'], 'XEP-0187'),
'AMB-35': (ADDON['OFF'], 'XEP-0187'),
'AMB-36': (ADDON['OFF'], 'XEP-0187 PEP publishing'),
'AMB-37': (ADDON['PKP'], 'XEP-0189'),
'AMB-38': (ADDON['ARC'], 'XEP-0136 (only the namespace constant exists, wire ns.rs)'),
'AMB-39': ('done', J(TP('renegotiation', 'a_renegotiation_is_answered_renegotiate_0_and_the_agreed_parameters_stay', 'after_a_refused_renegotiation_new_parameters_come_from_a_fresh_session', 'continue_terminates_the_session_and_negotiates_afresh_with_the_new_resource', 'continue_to_the_same_resource_changes_nothing'))),
'AMB-40': ('done', J('we send 16-byte nonces (8 under the Gajim profile), accept >= 8 (Config::min_peer_nonce_len); ' + P('core', 'tests/gajim_profile.rs', 'gajim_as_bob_with_an_ordinary_counter'), TP('tamper_negotiation', 'every_field_of_the_offer_is_protected') + ' (a 3-byte my_nonce is refused)')),
'AMB-41': ('done', TR),
'AMB-42': ('done', J(TR + ' (4-message mac_A over form_A2, independent vectors)', P('crypto', 'tests/esession_transcripts.rs', 'replays_4msg_transcript_without_retained_secret'),
    'the 3-message flow computes the same mac_A (' + TP('three_message', 'three_messages_with_rsa_keys') + '; no independent 3-message vectors exist)')),
'AMB-43': ('done', J(TP('pubkeys', 'an_unknown_key_fails_the_negotiation_by_default', 'the_dangerous_override_accepts_an_unknown_key_as_unauthenticated', 'mallory_with_her_own_key_is_refused_by_both_victims'),
    TP('three_message', 'unknown_keys_fail_three_messages_too_unless_overridden'), 'CLI: `[account] dangerously_accept_unverified_keys`')),
'AMB-44': ('done', TP('three_message', 'content_bundled_with_the_completion_is_delivered_after_the_identity', 'bundled_content_with_a_bad_identity_is_not_delivered', 'content_cannot_be_bundled_with_four_messages')),
'AMB-45': ('done', J('online sessions always acknowledge: ' + TP('normal', 'terminate_and_ack_end_both_sides_and_later_sends_fail'), 'offline (XEP-0187) sessions come with the add-on issue')),
'AMB-46': ('done', P('crypto', 'tests/known_answers.rs', 'serpent_matches_nessie_vectors_in_nessie_byte_order')),
'AMB-47': ('done', J(P('wire', 'src/normalize.rs', 'lenient_normalize_keeps_mixed_text_but_try_normalize_rejects_it_amb_47', 'strict_form_content_rejects_text_in_x_and_foreign_elements_amb_47'), P('wire', 'src/form.rs', 'rejects_mixed_content_amb_47'))),
'AMB-48': ('done', J(P('wire', 'src/normalize.rs', 'drops_namespace_declarations_prefixes_and_prefixed_attributes_amb_48'), P('wire', 'src/form.rs', 'ignores_white_space_and_namespaced_attributes_amb_48'))),
'AMB-49': ('done', J(P('wire', 'src/encrypted.rs', 'm_content_keeps_white_space_inside_values_and_drops_it_between_children_amb_49', 'm_content_has_no_attributes_or_namespaces_and_reescapes_amb_49'),
    P('wire', 'tests/vectors.rs', 'm_content_matches_the_vectors_for_every_encrypted_stanza_enc_09_amb_49'))),
'AMB-50': ('done', J(TR, TP('tamper_negotiation', 'every_field_of_the_offer_is_protected') + ' (accept=true instead of 1: same meaning, other bytes, refused)')),
'AMB-51': ('done', J('the responder maps dhhashes to modp <option/>s', TP('tamper_negotiation', 'every_field_of_the_offer_is_protected') + ' (He count no longer matching the options)')),
'AMB-52': ('done', J(TP('misuse', 'an_unknown_form_type_gets_service_unavailable', 'unknown_required_fields_get_feature_not_implemented_naming_all_of_them'),
    TP('errors', 'a_refused_final_message_ends_the_responders_session'), TP('tamper_negotiation', 'every_field_of_the_answer_is_protected', 'every_field_of_the_completion_is_protected'))),
'AMB-53': ('done', TP('tamper_messages', 'a_flipped_bit_in_data_delivers_nothing_and_ends_the_session', 'a_good_message_after_a_bad_one_is_not_delivered', 'sending_after_an_integrity_failure_fails')),
'AMB-54': ('done', J('default profile: ' + TP('misuse', 'a_clear_terminate_on_an_established_thread_is_reported_and_not_obeyed'), 'Gajim compatibility profile (docs/INTEROP.md) honours and sends it: ' + P('core', 'tests/gajim_profile.rs', 'gajim_as_alice_negotiates_chats_and_terminates_with_us_as_bob', 'two_of_our_clients_on_the_gajim_profile_chat_and_terminate'))),
'AMB-55': ('done', TP('rekey', 'rekey_before_rekey_freq_stanzas_is_an_api_error')),
'AMB-56': ('done', J(TP('rekey', 'two_keys_received_are_reported_as_new_2_then_nothing', 'peer_new_1_after_two_own_rekeys_selects_set_1_and_wipes_set_0', 'at_most_eight_key_sets_wait_for_an_answer'),
    P('core', 'src/session/tests.rs', 'new_1_after_two_own_rekeys_uses_set_1_and_wipes_set_0', 'a_new_beyond_our_newest_set_is_unauthenticated'))),
'AMB-57': ('done', J('Event::RetainedSecretProven', TP('tamper_negotiation', 'a_tampered_final_message_does_not_break_the_retained_secret_chain', 'a_tampered_completion_in_a_second_session_keeps_the_chain'))),
'AMB-58': ('done', J('the core turns the stored password into OSS bytes as the UTF-8 of its NFC form (unicode-normalization), nothing trimmed, other bytes as they are (negotiation/secrets.rs)',
    P('core', 'src/negotiation/secrets.rs', 'nfc_composes_a_decomposed_password_amb_58', 'nfc_keeps_white_space_and_ascii_amb_58', 'nfc_leaves_bytes_that_are_not_utf8_alone'),
    TP('shared_secrets', 'a_decomposed_and_a_precomposed_password_give_the_same_keys', 'white_space_in_a_password_is_not_trimmed'), TR + ' (ASCII password, unchanged)')),
'AMB-59': ('done', J('Config::logging; default `may, mustnot` (no client can confirm archiving is off before the XEP-0136 add-on)', TP('tamper_negotiation', 'every_field_of_the_offer_is_protected') + ' (the `logging` order)')),
'AMB-60': ('done', TP('normal', 'the_offer_carries_the_amp_drop_rule_and_no_body')),
'AMB-61': ('done', P('wire', 'src/keyvalue.rs', 'identity_payload_is_norm_keyvalue_then_signature_value_without_xmlns_amb_61', 'identity_payload_accepts_explicit_xmlns_and_the_bare_gajim_key_amb_17_amb_61')),
'AMB-62': ('done', 'by inspection, nothing to test: no Cargo feature exports keys or traces or makes randomness deterministic (features: aws-lc-modexp, bench-openssl); deterministic RNGs live in test code only'),
}

# Readings of our own beyond requirements.md, listed after the table.
READINGS = [
    ('Proposed AMB-63: one key set per stanza',
     'ENC-03 lets a type=\'error\' presence or iq carry a second `<c/>` inside `<error/>`; XEP-0200 does not say how '
     'that interacts with rekeying (ENC-08/11/16). We treat the stanza as one unit: the sender puts the same `<new/>` '
     'in both `<c/>` and `<key/>` (and `<old/>`) only in the top-level one, and its `<key/>` takes effect after the '
     'whole stanza; both `<c/>` count towards the block limit. The receiver verifies both before committing anything '
     'and refuses the stanza (ending the session) when the two chose different key sets or the inner one carries `<key/>` '
     '(crates/esession/src/session/kinds.rs, session/mod.rs).',
     J(P('core', 'src/session/tests.rs', 'the_two_c_of_one_stanza_must_choose_the_same_key_set', 'a_key_inside_error_is_refused_whole_and_changes_nothing'),
       TP('rekey', 'an_iq_error_with_an_inner_c_works_across_a_rekey_with_both_key_sets_in_play', 'an_iq_error_that_would_reach_the_block_limit_goes_after_a_rekey_only_stanza'))),
    ('ENC-03: counter order of the two `<c/>` of an error stanza',
     'requirements.md\'s ENC-03 [IMPL] note says "counters in document order". Stanza libraries reorder children '
     '(xmpp-parsers, used by tokio-xmpp, serializes `<error/>` before the top-level `<c/>` of every iq error), so '
     'document order is not stable in transit. Our reading: counters run in the order of sealing, the top-level `<c/>` '
     'first, then the one inside `<error/>`, wherever the `<error/>` sits. Each `<c/>` stays bound to its place by '
     'its counter, so swapping their contents fails verification.',
     J(TP('stanza_kinds', 'an_iq_error_reordered_in_transit_still_decrypts', 'the_contents_of_the_two_c_of_an_iq_error_cannot_be_swapped', 'an_iq_error_keeps_the_error_and_its_condition_clear_and_hides_the_rest'),
       P('xmpp', 'tests/prosody.rs', 'encrypted_presence_and_iq_through_prosody') + ' (through a real server, `<error/>` first on the wire)')),
]


def check_citations():
    missing = []
    for crate, path, name in CITED:
        f = os.path.join(ROOT, 'crates', CRATES[crate], path)
        try:
            src = open(f, encoding='utf-8').read()
        except OSError:
            missing.append(f'{crate}: {path} (no such file) {name}')
            continue
        m = re.search(r'\bfn\s+' + re.escape(name) + r'\b', src)
        if not m or not re.search(r'#\[(?:tokio::)?test\b', src[max(0, m.start() - 300):m.start()]):
            missing.append(f'{crate}: {path} {name}' + ('' if m else ' (no such fn)'))
    return missing


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    req = open(sys.argv[1], encoding='utf-8').read()
    ids = re.findall(r'^- ((?:CMN|THR|SSN|ENC|SIM|ESN|PKP|OFF|ARC|AMB)-\d+)\s*(.*)$', req, re.M)
    problems = check_citations()
    known = {i for i, _ in ids}
    problems += [f'{i}: in the table but not in requirements.md' for i in S if i not in known]
    problems += [f'{i}: no status' for i, _ in ids if i not in S and not i.startswith(('PKP', 'OFF', 'ARC'))]
    if problems:
        sys.exit('conformance_gen: not written:\n  ' + '\n  '.join(problems))
    out = ['# Conformance', '',
     'Every requirement of `shared/notes/requirements.md`, its status here, and the tests that prove it.',
     'Generated by `python3 docs/conformance_gen.py ../shared/notes/requirements.md` from the table in that',
     'script, which checks that every test it cites exists; edit the script, not this file.', '',
     'Proofs name tests as `crate: path test_name`, the path inside the crate: `crypto` = crates/esession-crypto,',
     '`wire` = crates/esession-wire, `core` = crates/esession (`tests/two_party/*.rs` is the in-memory two-party',
     'harness with tamper hook and MITM relay; `tests/transcripts.rs` replays independent vectors byte for byte),',
     '`store` = crates/esession-store, `xmpp` = crates/esession-xmpp (`tests/prosody.rs` runs against a real',
     'Prosody), `cli` = crates/esession-cli.', '',
     'Status: **done** (implemented and proved by the tests named; "by inspection" where there is nothing to test),',
     '**partial** (what is missing is said), **not yet** (with the issue that brings it: the XEP-0189/0187/0136',
     'add-ons come with a later add-on issue, the Gajim compatibility profile with issue 6), **n/a** (with the reason).', '',
     '| id | requirement (abridged) | status | proof |', '|---|---|---|---|']
    counts = collections.Counter()
    for i, text in ids:
        t = re.sub(r'\s+', ' ', text).replace('|', '\\|')
        cut = len(t) > 110
        t = t[:110]
        if t.count('`') % 2:  # close a code span cut by the abridgement or the line end
            t += '`'
        t += '…' if cut else ''
        st, proof = S.get(i) or (ADDON[i.split('-')[0]], '')
        counts[(i.split('-')[0], st.split(' (')[0])] += 1
        # Element names outside code spans would be read as HTML and vanish.
        proof = re.sub(r'(?<!`)(<[a-z]+/>)(?!`)', r'`\1`', proof).replace('|', '\\|')
        out.append(f'| {i} | {t} | {st} | {proof} |')
    out += ['', '## Readings beyond requirements.md', '',
            'Where requirements.md is silent or its note does not survive real stanza libraries, the code follows these',
            'readings; they are proposed for requirements.md.', '']
    for title, text, proof in READINGS:
        proof = re.sub(r'(?<!`)(<[a-z]+/>)(?!`)', r'`\1`', proof)
        out += [f'- **{title}.** {text} Proof: {proof}.', '']
    with open(os.path.join(ROOT, 'docs', 'CONFORMANCE.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(out).rstrip('\n') + '\n')
    statuses = ['done', 'partial', 'not yet', 'n/a']
    prefixes = ['CMN', 'THR', 'SSN', 'ENC', 'SIM', 'ESN', 'AMB', 'PKP', 'OFF', 'ARC']
    print(f'{len(ids)} ids, {len(set(CITED))} distinct test citations checked', file=sys.stderr)
    for p in prefixes:
        print(p, ', '.join(f'{s} {counts[(p, s)]}' for s in statuses if counts[(p, s)]), file=sys.stderr)
    print('total', ', '.join(f'{s} {sum(v for (q, t), v in counts.items() if t == s)}' for s in statuses), file=sys.stderr)


if __name__ == '__main__':
    main()
