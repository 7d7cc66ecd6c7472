'use strict'
// The client suites on a simulated taro object (see platforms.js), against the local stack.
require('./suite.js')('taro')
require('./ended.js')('taro')
require('./phone.js')('taro')
require('./account.js')('taro')
require('./admin.js')('taro')
